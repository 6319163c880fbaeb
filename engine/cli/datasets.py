"""``python -m engine datasets``: list every labelled dataset, its size, label provenance and
where it comes from (embedded package, reference folder or GENNAPE-format file)."""

from __future__ import annotations

import argparse
import json

HELP = "list available labelled datasets (name, family, count, label provenance, location)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="reference data folder (default: GENNAPE_DATA_DIR or ../shared/data)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from engine.data import available

    infos = available(args.data_dir)
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    rows = [[i.name, i.family, "?" if i.count is None else f"{i.count:,}",
             "unreadable" if i.problem else "present" if i.present else "absent", i.provenance, i.location]
            for i in infos]
    print(_table(rows, ["name", "family", "count", "status", "label provenance", "location"]))
    unreadable = [i for i in infos if i.problem]
    if unreadable:
        print(f"\n{len(unreadable)} dataset(s) unreadable (they will not load):")
        for i in unreadable:
            print(f"  {i.name}: {i.problem if i.location in i.problem else f'{i.location}: {i.problem}'}")
    absent = sum(not i.present for i in infos)
    if absent:
        print(f"\n{absent} dataset(s) absent: they need the reference data folder (--data-dir or GENNAPE_DATA_DIR).")
    return 0
