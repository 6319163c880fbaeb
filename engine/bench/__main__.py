"""``python -m engine.bench <section> [<section> ...] | all``: print benchmark numbers."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys

import engine.bench as bench_pkg


def sections() -> list[str]:
    return sorted(i.name for i in pkgutil.iter_modules(bench_pkg.__path__) if not i.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or ["all"]
    if any(n in ("-h", "--help") for n in names):
        print(f"usage: python -m engine.bench [SECTION ...] | all\n\nPrint benchmark numbers. Sections: "
              f"{', '.join(sections())}; 'all' (the default) runs every one.")
        return 0
    if names == ["all"]:
        names = sections()
    unknown = [n for n in names if n not in sections()]
    if unknown:
        print(f"error: unknown section(s) {unknown}; choose from {sections()} or 'all'", file=sys.stderr)
        return 2
    results = {}
    for name in names:
        print(f"== {name} ==", flush=True)
        results[name] = importlib.import_module(f"engine.bench.{name}").run()
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
