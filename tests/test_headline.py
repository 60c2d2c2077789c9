"""The headline command of the README, copied verbatim, works from a fresh clone's root and
from a directory outside the repository; every space command takes every way of naming a
shipped space."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nasl.space import shipped_dir

REPO = Path(__file__).resolve().parents[1]
HEADLINE = "nasl search spaces/shufflenet.yaml --budget 40MFLOPs"
SMALL = ["--trials", "1", "--epochs", "1"]  # the only change to the headline: a short run
SHIPPED = ["hybrid", "mobilenet", "shufflenet", "squeezenet", "xception"]


def _readme() -> str:
    path = REPO / "README.md"
    if not path.is_file():
        pytest.skip("not a source checkout")
    return path.read_text()


def _nasl() -> str:
    """The installed ``nasl`` script of this interpreter (not ``python -m``, which would
    import a clone's own ``nasl/`` folder from the working directory)."""
    exe = shutil.which("nasl", path=str(Path(sys.executable).parent)) or shutil.which("nasl")
    if exe is None:
        pytest.skip("the nasl command is not installed")
    return exe


def test_readme_set_up_and_main_job_use_the_headline() -> None:
    text = _readme()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    first = next(line for line in setup.splitlines() if "nasl " in line and
                 not line.lstrip().startswith("#"))
    assert first.rstrip().endswith(f"&& {HEADLINE}"), first
    main_job = setup[setup.index("The main job"):]
    assert f"`{HEADLINE}`" in main_job or "`spaces/shufflenet.yaml`" in main_job
    assert shlex.split(HEADLINE)[:2] == ["nasl", "search"]


CHILD = """
import contextlib, io, json, sys
from nasl.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = main(argv)
    out.append([rc, o.getvalue(), e.getvalue()])
print(json.dumps(out))
"""


def test_space_commands_take_every_form_outside_the_repo(tmp_path: Path) -> None:
    """``nasl space validate|show|sample`` in one child process (one start-up, not 22)."""
    forms = {n: [f.format(n) for f in ("spaces/{}.yaml", "search_spaces/{}.yaml", "{}")]
             for n in SHIPPED}
    cmds = [["space", "validate", f] for n in SHIPPED for f in forms[n]]
    cmds += [["space", "show", f, "--budget", "40MFLOPs", "-n", "3"] for f in forms["shufflenet"]]
    cmds += [["space", "sample", f, "-n", "2", "--seed", "0", "--json"]
             for f in forms["mobilenet"]]
    cmds += [["space", "validate", "spaces/shufflenett.yaml"]]
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cmds)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.splitlines()[-1])
    assert len(res) == len(cmds)
    for cmd, (rc, _out, err) in zip(cmds[:-1], res[:-1], strict=True):
        assert rc == 0, (cmd, err)
    validated = [out.split(": ok (")[0] for _, out, _ in res[:15]]
    assert validated == [f for n in SHIPPED for f in forms[n]]
    for _, out, _ in res[15:18]:
        assert f"from shipped file {shipped_dir() / 'shufflenet.yaml'}" in out
    samples = [json.loads(out) for _, out, _ in res[18:21]]
    assert samples[0] == samples[1] == samples[2] and len(samples[0]) == 2
    rc, out, err = res[-1]
    assert rc == 2 and err.strip() == (
        "nasl: error: no such space file 'spaces/shufflenett.yaml' (looked for "
        f"{tmp_path / 'spaces' / 'shufflenett.yaml'}), and no shipped space is named "
        "'shufflenett'; did you mean 'spaces/shufflenet.yaml'? (shipped spaces: hybrid, "
        "mobilenet, nb201, shufflenet, squeezenet, xception)")


def _run_headline(cwd: Path, runs: Path) -> dict[str, Any]:
    argv = [_nasl(), *shlex.split(HEADLINE)[1:], *SMALL, "--name", "headline",
            "--runs-dir", str(runs)]
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900)
    run = runs / "headline"
    env = json.loads((run / "env.json").read_text()) if (run / "env.json").is_file() else {}
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr, "run": run, "env": env,
            "cwd": cwd}


@pytest.fixture(scope="module")
def outside_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cwd = tmp_path_factory.mktemp("elsewhere")
    assert REPO not in cwd.resolve().parents and not (cwd / "spaces").exists()
    return _run_headline(cwd, cwd / "runs")


@pytest.fixture(scope="module")
def clone_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs git and a git checkout")
    clone = tmp_path_factory.mktemp("clone") / "nasl"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    assert (clone / "spaces" / "shufflenet.yaml").is_symlink()  # git keeps the link
    return _run_headline(clone, clone / "runs")


def _check_run(res: dict[str, Any]) -> None:
    assert res["rc"] == 0, res["err"][-3000:]
    for f in ("trials.csv", "pareto.csv", "env.json", "space.yaml", "report.html"):
        assert (res["run"] / f).is_file(), f
    assert res["env"]["space"] == "shufflenet" and res["env"]["budgets"] == {"macs": 40e6}
    assert re.search(r"Pareto front \(\d+ of \d+ trials\)", res["out"])


@pytest.mark.slow
def test_headline_runs_outside_the_repository(outside_run: dict[str, Any]) -> None:
    _check_run(outside_run)


@pytest.mark.slow
def test_headline_runs_from_a_fresh_clone_root(clone_run: dict[str, Any]) -> None:
    _check_run(clone_run)


def _first_line(res: dict[str, Any]) -> str:
    lines = [line for line in (res["err"] + "\n" + res["out"]).splitlines() if line.strip()]
    return lines[0] if lines else ""


@pytest.mark.slow
def test_headline_says_which_space_file_was_used(outside_run: dict[str, Any],
                                                 clone_run: dict[str, Any]) -> None:
    shipped = shipped_dir() / "shufflenet.yaml"
    assert _first_line(outside_run) == f"space 'shufflenet': shipped file {shipped}"
    assert outside_run["env"]["space_file"] == str(shipped)
    assert outside_run["env"]["space_source"] == "shipped"
    # in a clone, spaces/shufflenet.yaml exists (a link into the clone): the user's file wins
    mine = clone_run["cwd"] / "spaces" / "shufflenet.yaml"
    assert _first_line(clone_run) == f"space 'shufflenet': user file {mine}"
    assert clone_run["env"]["space_file"] == str(mine)
    assert clone_run["env"]["space_source"] == "user file"
