"""The command line explains itself: every flag of every sub-command has help text, search's
flags are grouped, `nasl --version` works, and a user error carries one "nasl: error:" prefix."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from nasl.cli import build_parser, main
from nasl.cli.search_args import walk


def _flags_without_help(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for p in walk(parser):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not (action.help or "").strip():
                missing.append(f"{p.prog} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_flag_of_every_command_has_help_text() -> None:
    parser = build_parser()
    progs = {p.prog for p in walk(parser)}
    assert {"nasl search", "nasl space show", "nasl latency calibrate", "nasl fidelity",
            "nasl proxies", "nasl export"} <= progs
    assert _flags_without_help(parser) == []


def test_the_walk_catches_a_flag_without_help() -> None:
    parser = build_parser()
    next(p for p in walk(parser) if p.prog == "nasl report").add_argument("--bare")
    assert _flags_without_help(parser) == ["nasl report --bare"]


def test_search_help_has_groups_defaults_choices_and_examples(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["search", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for group in ("space and budget:", "proxy training:", "search strategy:", "confirmation",
                  "latency:", "backends:", "tracking:", "output:", "examples:"):
        assert group in out, group
    assert "{tpe,nsga2,nsga3,gp,random,pick}" in out and "(default: auto)" in out
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "nasl search spaces/shufflenet.yaml --budget 40MFLOPs" in out


def test_no_help_prints_a_doubled_percent(capsys) -> None:
    for p in walk(build_parser()):
        text = p.format_help()
        assert "%%" not in text, p.prog


def test_one_name_for_the_space_argument() -> None:
    names = set()
    for p in walk(build_parser()):
        for a in p._actions:
            if not a.option_strings and "space name" in (a.help or ""):
                names.add(a.dest)
    assert names == {"space"}


def test_version_from_the_package_metadata() -> None:
    from importlib import metadata

    r = subprocess.run([sys.executable, "-m", "nasl.cli", "--version"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"nasl {metadata.version('nasl')}"


@pytest.mark.parametrize("argv, expected", [
    (["searc"], "nasl: error: COMMAND 'searc': expected one of presets, cost, search"),
    (["search", "x", "--sampler", "cmaes"], "nasl: error: --sampler 'cmaes': expected one of tpe"),
    (["cost", "mobilenet_v1", "--set", "width_mult=-1"], "nasl: error: cost mobilenet_v1: width_mult"),
    (["search", "x", "--trials", "many"], "nasl: error: argument --trials: invalid int value"),
])
def test_user_errors_have_one_prefix_and_exit_2(capsys, argv, expected) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(expected) and len(err.strip().splitlines()) == 1, err
    assert err.count("nasl:") == 1, err


def test_dashboard_hint_says_how_to_install_it(monkeypatch) -> None:
    import importlib.util
    from pathlib import Path

    from nasl.cli.cmd_runs import dashboard_hint

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna_dashboard" else real(name, *a))
    hint = dashboard_hint("sqlite:///runs/x/study.db")
    assert hint.startswith("  optuna-dashboard sqlite:///runs/x/study.db")
    assert 'pip install -e ".[dashboard]"' in hint and "pip install optuna-dashboard" in hint
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert dashboard_hint("sqlite:///s.db") == "  optuna-dashboard sqlite:///s.db"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        assert 'dashboard = ["optuna-dashboard' in pyproject.read_text()
