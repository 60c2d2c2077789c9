"""Deprecated location: use :func:`nasl.results.load_run` / :func:`nasl.results.open_run_study`
and :func:`nasl.report.rebuild`. Kept so that code written against 0.1 keeps importing."""

from __future__ import annotations

from nasl.report.rebuild import rebuild
from nasl.results import load_run, open_run_study

__all__ = ["load_run", "open_run_study", "rebuild"]
