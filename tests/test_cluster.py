"""Real distributed parts: a Ray cluster started with ``ray start`` (a head and a second node,
the worker node killed mid-search) and several ``nasl search`` processes sharing one study on
a real PostgreSQL server (one of them killed with SIGKILL): no trial lost or duplicated.

Both are slow (minutes on 2 cores). The PostgreSQL test needs the server binaries (Debian
package ``postgresql``: ``initdb``/``pg_ctl``) and ``psycopg2``; it is skipped, with the
reason, when either is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE

pytestmark = pytest.mark.slow

SPACE = TINY_SPACE.replace("objectives: [{accuracy: max}, {macs: min}, {latency_ms: min}]",
                           "objectives: [{accuracy: max}, {macs: min}]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nasl_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "nasl.cli", *args]


def env() -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def wait_until(predicate, timeout: float, every: float = 0.5) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def check_study(study: optuna.Study, trained_at_least: int) -> list[optuna.trial.FrozenTrial]:
    """No trial lost or duplicated: numbers 0..n-1, nothing left RUNNING, every trained trial
    ended; returns the trained ones."""
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert not [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    trained = [t for t in trials if t.user_attrs.get("trained")]
    assert len(trained) >= trained_at_least
    assert all(t.state.name in ("COMPLETE", "PRUNED", "FAIL") for t in trained)
    return trained


# ----------------------------------------------------------------------------- Ray cluster
def test_ray_cluster_with_a_worker_node_killed(tmp_path: Path):
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not Path(ray_bin).exists():
        pytest.skip("the `ray` command is not installed")
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE.replace("trials: 3", "trials: 4"))
    port = free_port()
    temp = Path(f"/tmp/nr{port}")  # Ray's socket paths must stay short
    # both nodes run in the foreground (--block) in their own process groups, so the test can
    # kill exactly this cluster (not `ray stop`, which would stop every Ray on the machine)
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--port", str(port),
                             "--num-cpus", "1", "--include-dashboard=false",
                             "--disable-usage-stats", f"--temp-dir={temp}"], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    worker = None
    try:
        def head_up() -> bool:
            assert head.poll() is None, "ray start --head failed"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        assert wait_until(head_up, 180)
        address = f"127.0.0.1:{port}"
        worker = subprocess.Popen([ray_bin, "start", "--address", address, "--num-cpus", "1",
                                   "--block", "--disable-usage-stats"], env=env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        runs = tmp_path / "runs"
        # `--address auto`, as docs/scale.md says; RAY_ADDRESS pins "auto" to this test's head
        # (other clusters may run on a shared machine)
        search = subprocess.Popen(nasl_cmd("search", str(space), "--backend", "ray", "--address",
                                           "auto", "--workers", "2", "--runs-dir", str(runs),
                                           "--name", "c", "--quiet", "--no-early-stop"),
                                  env={**env(), "RAY_ADDRESS": address}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        db = runs / "c" / "study.db"

        def two_running() -> bool:
            from conftest import db_count

            return db_count(db, "SELECT count(*) FROM trials WHERE state = 'RUNNING'") >= 2 \
                or search.poll() is not None

        assert wait_until(two_running, 300)
        assert search.poll() is None, "the search ended before the worker node was killed"
        os.killpg(worker.pid, signal.SIGKILL)  # the second node dies mid-trial
        assert wait_until(lambda: worker.poll() is not None, 30)
        out, err = search.communicate(timeout=900)
        assert search.returncode == 0, err[-3000:]
        study = optuna.load_study(study_name="c", storage=f"sqlite:///{db}")
        trained = check_study(study, 4)
        assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trained) >= 4
        print("trials:", [(t.number, t.state.name, t.user_attrs.get("node"), t.user_attrs.get("reason"))
                         for t in study.get_trials(deepcopy=False)])
    finally:
        for node in (worker, head):
            if node is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        shutil.rmtree(temp, ignore_errors=True)


# ----------------------------------------------------------------------------- PostgreSQL
def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run a server command as the ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture
def postgres(tmp_path: Path):
    """A throwaway PostgreSQL cluster in tmp → its URL; stopped and removed after."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    pytest.importorskip("psycopg2", reason="psycopg2 not installed (pip install psycopg2-binary)")
    if os.geteuid() == 0:
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a `postgres` user to run the server as")
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="nasl-pg-"))  # outside pytest's 0700 tmp: the server's user
    os.chmod(top, 0o755)                              # must reach it
    data, sock = top / "data", top / "s"
    for d in (data, sock):
        d.mkdir()
        if os.geteuid() == 0:
            os.chown(d, pw.pw_uid, pw.pw_gid)
    r = subprocess.run(_as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "nasl"]),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    port = free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=50"
    r = subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-o", opts, "-w", "-t", "120",
                                     "-l", str(data / "log"), "start"]),
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    try:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user="nasl", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE nasl_test")
        con.close()
        yield f"postgresql+psycopg2://nasl@127.0.0.1:{port}/nasl_test"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(top, ignore_errors=True)


def test_processes_share_one_study_on_postgresql(postgres: str, tmp_path: Path):
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE.replace("epochs: 2", "epochs: 3"))

    def search(folder: str, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(nasl_cmd("search", str(space), "--storage", postgres, "--name", "s",
                                         "--runs-dir", str(tmp_path / folder), "--quiet",
                                         "--trials", "5", "--no-early-stop", *extra),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    storage: list[optuna.storages.RDBStorage] = []  # one pool: a new storage per poll leaked
    # connections until the server's 50 were gone (CI, stop 17: "too many clients already")

    def study() -> optuna.Study | None:
        if not storage:
            storage.append(optuna.storages.RDBStorage(postgres))
        try:
            return optuna.load_study(study_name="s", storage=storage[0])
        except KeyError:
            return None

    a = search("a")
    assert wait_until(lambda: study() is not None or a.poll() is not None, 180)
    b = search("b", "--resume")
    c = search("c", "--resume")

    def c_trains() -> bool:
        s = study()
        return c.poll() is not None or (s is not None and any(
            t.state.name == "RUNNING" and t.user_attrs.get("trained")
            and f":{c.pid}:" in str(t.user_attrs.get("owner")) for t in s.get_trials(deepcopy=False)))

    assert wait_until(c_trains, 300)
    c.kill()  # SIGKILL in the middle of a trial
    c.wait()
    for p in (a, b):
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    # a later --resume fails the killed process's trial and runs its design again
    d = search("d", "--resume")
    _, err = d.communicate(timeout=900)
    assert d.returncode == 0, err[-3000:]
    s = study()
    trained = check_study(s, 5)
    killed = [t for t in s.trials if "interrupted" in str(t.user_attrs.get("reason"))]
    assert len(killed) <= 1 and all(not t.user_attrs.get("trained") for t in killed)
    done = [t for t in trained if t.state.name in ("COMPLETE", "PRUNED")]
    assert 5 <= len(done) <= 5 + 2  # processes finishing the same count may over-run by one each
