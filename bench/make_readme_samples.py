"""Regenerate the sample outputs shown in README.md and docs/*.md from the code.

Each sample sits between ``<!-- sample: NAME -->`` and ``<!-- /sample -->``; this script
replaces what is between them:

- ``cost-json``: the output of ``nasl cost shufflenet_v1 --set groups=8 --set width_mult=0.5
  --json`` (a test compares it with the code's, so it never goes stale);
- ``trials-columns``: the trials.csv fields after the design choices (``nasl.run.results.AFTER``);
- ``main-job``, ``main-job-full``: an excerpt and the whole of a log of the main job, with
  ``--log FILE`` (made with ``nasl search spaces/shufflenet.yaml --budget 40MFLOPs > FILE
  2>&1``; without ``--log`` these two stay as they are).

Usage: ``python bench/make_readme_samples.py [--log FILE] [--check]``; ``--check`` writes
nothing and exits 1 when a regenerated sample differs from the file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COST_ARGV = ["cost", "shufflenet_v1", "--set", "groups=8", "--set", "width_mult=0.5", "--json"]
BLOCK = re.compile(r"(<!-- sample: (?P<name>[\w-]+) -->)(?P<body>.*?)(<!-- /sample -->)", re.S)
EXCERPT_LINES = 10


def cost_json() -> str:
    """What ``nasl cost shufflenet_v1 --set groups=8 --set width_mult=0.5 --json`` prints."""
    from nasl.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(COST_ARGV)
    assert rc == 0
    return out.getvalue().strip()


def trials_columns() -> str:
    """The trials.csv columns after the design choices, as inline code."""
    from nasl.run import results

    return "`" + ", ".join(results.AFTER) + "`"


def trials_fields() -> str:
    """Every field of the trial record (nasl.common.record.TrialRecord) as a Markdown table: column,
    unit, meaning, and where it goes when it is not a column of its own."""
    from dataclasses import fields

    from nasl.common.record import TrialRecord

    out = ["", "| field | unit | meaning |", "|---|---|---|"]
    for f in fields(TrialRecord):
        m = f.metadata
        where = f" ({m['csv']})" if m["csv"] else ""
        derived = " — derived when rows are written" if not m["stored"] else ""
        out.append(f"| `{f.name}` | {m['unit']} | {m['doc']}{where}{derived} |")
    return "\n".join(out) + "\n"


def main_job_lines(log: str) -> list[str]:
    """The lines of a main-job log worth showing (no blank lines, no file paths)."""
    return [ln.rstrip() for ln in log.splitlines() if ln.strip() and not ln.startswith("  /")]


def excerpt(log: str, n: int = EXCERPT_LINES) -> list[str]:
    """``n`` lines of a main-job log: the first two trials, the last one, the stages after
    the search, the answer (its heading, the most accurate and the knee picks) and the
    front's title."""
    lines = main_job_lines(log)
    trials = [ln for ln in lines if ln.startswith("trial ")]
    stages = [ln for ln in lines if ln.startswith(("confirmation:", "re-timing:"))]
    answer = [ln for ln in lines if ln.startswith("Answer under")
              or ln.lstrip().startswith(("most accurate within budget", "knee (balanced)"))]
    after = [ln for ln in lines if ln.startswith("Pareto front")
             or re.match(r"\d+ trained \(", ln)]
    picked = trials[:2] + ["…"] + trials[-1:] + stages + answer + after
    return picked[:n]


def fenced(lines: list[str], lang: str = "") -> str:
    return f"\n```{lang}\n" + "\n".join(lines) + "\n```\n"


def samples(log: str | None) -> dict[str, str]:
    """Sample name → the text that goes between its markers."""
    out = {"cost-json": fenced([cost_json()], "json"), "trials-columns": trials_columns(),
           "trials-fields": trials_fields()}
    if log is not None:
        out["main-job"] = fenced(excerpt(log))
        out["main-job-full"] = fenced(main_job_lines(log))
    return out


def apply(text: str, new: dict[str, str]) -> str:
    """``text`` with every known sample block's body replaced."""
    return BLOCK.sub(lambda m: m.group(1) + new.get(m["name"], m["body"]) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path, help="a log of the main job (stdout and stderr)")
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = ap.parse_args(argv)
    new = samples(args.log.read_text() if args.log else None)
    stale = []
    for path in FILES:
        text = path.read_text()
        updated = apply(text, new)
        if updated != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(updated)
    print(("stale: " if args.check else "updated: ") + (", ".join(stale) or "nothing"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
