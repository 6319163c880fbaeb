"""The README "Results" section, generated from a finished run folder.

``update_readme(run_dir, readme)`` replaces the text between ``<!-- results:start -->`` and
``<!-- results:end -->`` (appending the block when the markers are absent) with: the run's code
version and command, our numbers beside the paper's (``tables/paper_comparison.md``, each row
citing its paper table), the data differences, the main tables and the performance table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from engine.evaluate.tables import to_markdown

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _read(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (is this a finished evaluation run folder?)")
    return path.read_text()


def _demote(md: str) -> str:
    """Table titles one heading level down (### -> ####) for the README."""
    return "\n".join("#" + ln if ln.startswith("### ") else ln for ln in md.splitlines())


def _shown(path: Path) -> str:
    from engine.paths import REPO_ROOT

    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _data_sizes(data_csv: Path) -> str:
    """"N labelled <dataset> rows (paper: ...)" for each dataset of the run's data table."""
    if not data_csv.exists():
        return "the run's data table lists what was used"
    d = pd.read_csv(data_csv)
    return ", ".join(f"{int(r['labelled rows']):,} labelled {r['dataset']} rows (paper: {r['paper']})"
                     for _, r in d.iterrows())


def results_section(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    tdir = run_dir / "tables"
    version = _read(run_dir / "code_version.txt").strip().splitlines()
    commit = next((ln.split(":", 1)[1].strip() for ln in version if ln.startswith("commit:")), "unknown")
    dirty = next((ln.split(":", 1)[1].strip() for ln in version if ln.startswith("dirty:")), "unknown")
    resolved = json.loads(_read(run_dir / "config.resolved.json"))
    config_file = resolved.get("config_file") or "<config>"
    only = resolved.get("only")
    perf = pd.read_csv(run_dir / "performance.csv")
    perf["value"] = perf["value"].map(lambda v: f"{v:,.2f}")
    parts = [
        "## Results", "",
        f"Produced by `python -m engine evaluate --config {config_file}"
        + (f" --only {','.join(only)}" if only else "")
        + f"` (run folder `{run_dir.name}`, commit `{commit[:12]}`, dirty: {dirty}); the full report with every table "
        f"and plot is `{_shown(run_dir)}/report.md` (run folders are not committed). "
        f"**Our data differs from the paper's**: {_data_sizes(tdir / 'data.csv')}; see the data table. Paper "
        "values cite the paper's table number.", "",
    ]
    for stem in ("data", "paper_comparison", "table3_in_family", "table5_srcc", "table6_ndcg10", "table4_mae",
                 "k_sweep_srcc", "table1_proxies"):
        path = tdir / f"{stem}.md"
        if path.exists():
            parts += [_demote(path.read_text()), ""]
    parts += ["#### Performance (same run)", "", to_markdown(perf)]
    return "\n".join(parts).rstrip() + "\n"


def update_readme(run_dir: Path, readme: Path) -> Path:
    """Write the Results block of ``readme`` from ``run_dir`` (see module docstring)."""
    section = results_section(run_dir)
    text = readme.read_text() if readme.exists() else ""
    block = f"{START}\n{section}{END}\n"
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail.lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    readme.write_text(text)
    return readme
