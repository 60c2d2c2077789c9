"""Tests for nasl.hardware.omp: importing nasl has no side effect; the entry points choose the OpenMP
wait policy (PASSIVE on a busy machine only) before torch is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from nasl.hardware import omp

# In a fresh interpreter: the load average says busy, and /proc/stat says all CPUs busy now.
BUSY = ("import builtins, io, itertools, os; os.getloadavg = lambda: (64.0, 0.0, 0.0); "
        "_n, _open = itertools.count(), builtins.open; "
        "builtins.open = lambda f, *a, **k: io.StringIO('cpu %d 0 0 100 0 0 0 0' % "
        "(1000 * next(_n))) if f == '/proc/stat' else _open(f, *a, **k); ")
QUIET = "import os; os.getloadavg = lambda: (0.0, 0.0, 0.0); "
SHOW = ("import nasl, nasl.hardware.omp; print(os.environ.get('OMP_WAIT_POLICY'), "
        "nasl.hardware.omp.TORCH_IMPORTED_FIRST)")


def _python(code: str, **env: str) -> str:
    """Last line printed by ``python -c code`` without the user's OpenMP settings (plus ``env``)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_import_nasl_has_no_side_effect():
    """No sleep, no environment variable read or written, no torch: even on a busy machine."""
    code = BUSY + """
import sys, time
seen = []
time.sleep = lambda s: seen.append(f"sleep({s})")

class Watched(dict):
    def __getitem__(self, k): seen.append(f"environ[{k!r}]"); return super().__getitem__(k)
    def __setitem__(self, k, v): seen.append(f"environ[{k!r}] = {v!r}"); super().__setitem__(k, v)
    def __delitem__(self, k): seen.append(f"del environ[{k!r}]"); super().__delitem__(k)
    def __contains__(self, k): seen.append(f"{k!r} in environ"); return super().__contains__(k)
    def get(self, k, d=None): seen.append(f"environ.get({k!r})"); return super().get(k, d)

before = dict(os.environ)
os.environ = Watched(before)
import nasl
print(seen, dict(os.environ) == before, "torch" in sys.modules, nasl.__version__)
"""
    assert _python(code) == "[] True False 0.1.0"


def test_import_nasl_cli_imports_no_torch():
    """`nasl` (nasl.cli:main) chooses the policy first: its module must not load torch."""
    assert _python("import sys, nasl.cli, nasl.fidelity; print('torch' in sys.modules)") == "False"


@pytest.mark.slow
def test_the_entry_points_choose_passive_on_a_busy_machine_before_torch():
    cli = "from nasl.cli import main; main(['space', 'list', '--json']); "
    fidelity = ("import runpy, sys; sys.argv = ['nasl.fidelity', '--help']\ntry:\n"
                "    runpy.run_module('nasl.fidelity', run_name='__main__')\nexcept SystemExit:\n"
                "    pass\n")
    assert _python(BUSY + "import os\n" + SHOW) == "None False"  # importing chooses nothing
    assert _python(BUSY + cli + SHOW) == "PASSIVE False"
    assert _python(BUSY + fidelity + SHOW) == "PASSIVE False"
    assert _python(BUSY + "import torch; " + cli + SHOW) == "PASSIVE True"  # chosen too late


def test_the_user_and_a_quiet_machine_keep_the_default():
    choose = "from nasl.hardware.omp import choose_wait_policy; choose_wait_policy(); "
    assert _python(QUIET + choose + SHOW) == "None False"  # spinning is 2.7x faster when quiet
    assert _python(BUSY + choose + SHOW, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"  # the user's
    assert _python(BUSY + choose + SHOW, GOMP_SPINCOUNT="1000") == "None False"


def test_the_account_says_what_was_chosen():
    show = "import nasl.hardware.omp; print(repr(nasl.hardware.omp.account())); "
    choose = ("import nasl.hardware.omp; from nasl.hardware.omp import choose_wait_policy as c; "
              "print(c() == c() == nasl.hardware.omp.account()); ")
    assert _python(QUIET + show) == "\"not chosen by nasl in this process (libgomp's default)\""
    assert _python(QUIET + show, OMP_WAIT_POLICY="PASSIVE") == \
        "'not chosen by nasl in this process (OMP_WAIT_POLICY=PASSIVE from the environment)'"
    cores = len(os.sched_getaffinity(0))
    assert _python(BUSY + choose + show) == \
        f"'PASSIVE (busy machine: load 64.0 on {cores} cores, 100% of the CPUs busy now)'"
    assert _python(BUSY + show + choose) == "True"  # once per process, the same account


def _decide(monkeypatch, load: float, busy: float | None) -> tuple[str, str | None]:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(omp.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(omp.os, "sched_getaffinity", lambda pid: {0, 1})

    def share() -> float:
        if busy is None:
            raise OSError("no /proc/stat")
        return busy

    monkeypatch.setattr(omp, "busy_share", share)
    return omp.decide(), os.environ.get("OMP_WAIT_POLICY")


def test_a_lagging_load_average_alone_does_not_choose_passive(monkeypatch):
    """Seen in the scheduler benchmark: a search started right after another one ended saw
    load 1.9 on 2 cores and chose PASSIVE on a machine that was idle (2.7x slower training)."""
    why, env = _decide(monkeypatch, 1.9, 0.03)
    assert env is None and why.startswith("default spin") and "3% of the CPUs busy now" in why
    why, env = _decide(monkeypatch, 1.9, 0.97)
    assert env == "PASSIVE" and "97% of the CPUs busy now" in why
    why, env = _decide(monkeypatch, 0.2, 0.97)  # a low load is not measured further
    assert env is None and why == "default spin (quiet machine: load 0.2 on 2 cores)"
    why, env = _decide(monkeypatch, 1.9, None)  # no /proc/stat: the load decides, as before
    assert env == "PASSIVE" and why == "PASSIVE (busy machine: load 1.9 on 2 cores)"
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    assert omp.decide() == "set by the user"


def test_busy_share_sees_processes_computing_now():
    spin = "import time\nt = time.time()\nwhile time.time() - t < 3: pass"
    procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)  # the interpreters have started and spin
        assert omp.busy_share(0.5) > 0.6
    finally:
        for p in procs:
            p.kill()
            p.wait()
