"""A remote latency target: `nasl latency serve` in a subprocess, its refusals, and a search
that takes its latencies from it (and survives it going away)."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nasl.common.errors import NaslError
from nasl.common.events import Listener, TrialEnded
from nasl.latency import remote as rm
from nasl.latency.remote import RemoteRefused, RemoteTarget, RemoteUnavailable, TargetGone
from nasl.latency.runtime import onnx_bytes
from nasl.latency.wire import Refused, Verifier, check_model, is_pickle, read_token, sign, signature

ROOT = Path(__file__).resolve().parents[1]


def _token(path: Path, text: str = "a-test-token-of-40-characters-0123456789") -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def _onnx() -> bytes:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    return onnx_bytes(net, torch.zeros(1, 3, 16, 16))


class Server:
    """`nasl latency serve` on a free localhost port, its log in a file."""

    def __init__(self, tmp: Path, token: Path, *extra: str):
        self.log = tmp / f"serve-{time.monotonic_ns()}.log"
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nasl.cli", "latency", "serve", "--port", "0", "--token-file",
             str(token), "--device", "cpu", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"), env=env)
        deadline = time.monotonic() + 60
        while "listening on" not in self.text():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.1)
        self.port = int(self.text().split("listening on ")[1].split(",")[0].rsplit(":", 1)[1])
        self.address = f"127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("serve")
    token = _token(tmp / "token")
    server = Server(tmp, token, "--max-mb", "4")
    yield server, token
    server.stop()


# ---------------------------------------------------------------------- wire, no server
def test_signature_is_checked_once_within_the_window():
    v = Verifier(b"k" * 32, window=60)
    h = sign(b"k" * 32, "POST", "/measure?repeats=3", b"body")
    v.check("POST", "/measure?repeats=3", h, b"body")
    with pytest.raises(Refused, match="replayed"):
        v.check("POST", "/measure?repeats=3", h, b"body")
    for method, path, body, headers in (
            ("POST", "/measure?repeats=3", b"other", sign(b"k" * 32, "POST", "/measure?repeats=3", b"b")),
            ("POST", "/measure?repeats=999", b"b", sign(b"k" * 32, "POST", "/measure?repeats=3", b"b")),
            ("POST", "/measure", b"b", sign(b"x" * 32, "POST", "/measure", b"b")),
            ("POST", "/measure", b"b", {})):
        with pytest.raises(Refused) as e:
            v.check(method, path, headers, body)
        assert e.value.status == 401
    for ts in ("nan", "inf", "soon"):
        h = sign(b"k" * 32, "GET", "/info")
        h["X-Nasl-Timestamp"] = ts
        h["X-Nasl-Signature"] = signature(b"k" * 32, "GET", "/info", ts, h["X-Nasl-Nonce"], b"")
        with pytest.raises(Refused, match="bad timestamp"):
            v.check("GET", "/info", h, b"")
    with pytest.raises(Refused, match="stale"):
        v.check("GET", "/info", sign(b"k" * 32, "GET", "/info", now=time.time() - 600), b"")


def test_bodies_that_carry_code_or_no_model_are_refused(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    assert is_pickle(buf.getvalue()) and is_pickle(pickle.dumps({"a": 1}))
    assert not is_pickle(_onnx())
    assert check_model(_onnx()).graph.node
    for body, what in ((buf.getvalue(), "pickle"), (pickle.dumps([1]), "pickle"),
                       (b"hello, world", "not an ONNX model"), (b"", "empty")):
        with pytest.raises(Refused, match=what):
            check_model(body)
    import onnx

    model = onnx.load_from_string(_onnx())
    t = model.graph.initializer[0]
    t.data_location = onnx.TensorProto.EXTERNAL
    t.external_data.add(key="location", value="/etc/passwd")
    with pytest.raises(Refused, match="external data"):
        check_model(model.SerializeToString())


def test_token_file_must_be_private_and_long(tmp_path):
    p = _token(tmp_path / "t")
    assert read_token(p) == b"a-test-token-of-40-characters-0123456789"
    p.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_token(p)
    with pytest.raises(ValueError, match="at least 16"):
        read_token(_token(tmp_path / "short", "abc"))
    with pytest.raises(ValueError, match="HOST:PORT"):
        RemoteTarget("nohost", str(p))


def test_unreachable_target_fails_fast_after_bounded_retries(tmp_path, monkeypatch):
    monkeypatch.setattr(rm, "BACKOFF_S", 0.01)
    t = RemoteTarget("127.0.0.1:9", str(_token(tmp_path / "t")), timeout=2)  # discard port
    calls = []
    real = t._once
    monkeypatch.setattr(t, "_once", lambda *a: calls.append(1) or real(*a))
    with pytest.raises(RemoteUnavailable, match="unreachable after 4 attempts"):
        t.info()
    with pytest.raises(RemoteUnavailable):  # within the cool-down: no new connection
        t.info()
    assert len(calls) == 4


# ---------------------------------------------------------------------- the server
def _post(server: Server, token: bytes, body: bytes, headers: dict[str, str] | None = None,
          path: str = "/measure?repeats=3&warmup=1") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", path, body=body, headers=headers or sign(token, "POST", path, body))
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read())
    conn.close()
    return out


def test_server_measures_onnx_and_refuses_the_rest(served, tmp_path):
    server, token_file = served
    token = read_token(token_file)
    target = RemoteTarget(server.address, str(token_file))
    fp = target.info()
    assert fp["runtime"] == "onnxruntime" and fp["cpu"] and fp["host"] and len(fp["id"]) == 12
    lat = target.measure(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), (3, 16, 16), repeats=3)
    assert lat.repeats == 3 and lat.median_ms > 0 and lat.p10_ms <= lat.p90_ms
    assert lat.input_shape == (1, 3, 16, 16) and lat.fingerprint["id"] == fp["id"]

    wrong = RemoteTarget(server.address, str(_token(tmp_path / "w", "another-token-0123456789")))
    with pytest.raises(RemoteRefused, match="bad signature") as e:
        wrong.info()
    assert e.value.status == 401
    path = "/measure?repeats=3&warmup=1"
    model = _onnx()
    headers = sign(token, "POST", path, model)
    assert _post(server, token, model, headers)[0] == 200
    status, answer = _post(server, token, model, headers)  # the same request again
    assert status == 401 and "replayed" in answer["error"]
    status, answer = _post(server, token, os.urandom(5 * 2**20))
    assert status == 413 and "over the limit" in answer["error"]
    status, answer = _post(server, token, b"GIF89a not a model at all")
    assert status == 415 and "not an ONNX model" in answer["error"]
    buf = io.BytesIO()
    torch.save(torch.nn.Conv2d(1, 1, 1), buf)
    for body in (pickle.dumps({"x": 1}), buf.getvalue()):
        status, answer = _post(server, token, body)
        assert status == 415 and "pickle refused" in answer["error"]
    assert target.measure_onnx(_onnx(), repeats=2).repeats == 2  # still serving
    log = server.text()
    for what in ("bad signature", "replayed", "over the limit", "not an ONNX model",
                 "pickle refused"):
        assert "refused" in log and what in log, what
    assert server.proc.poll() is None


# ---------------------------------------------------------------------- a search against it
def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "trials.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_search_takes_its_latency_from_the_server(served, tiny_space, tmp_path):
    from nasl.cli import main

    server, token_file = served
    fp = RemoteTarget(server.address, str(token_file)).info()
    before = server.text().count("measured")
    rc = main(["search", str(tiny_space), "--trials", "2", "--epochs", "1", "--quiet",
               "--runs-dir", str(tmp_path), "--name", "r", "--confirm-seeds", "0",
               "--target-remote", server.address, "--token-file", str(token_file)])
    assert rc == 0
    rows = [r for r in _rows(tmp_path / "r") if r["state"] == "COMPLETE"]
    assert len(rows) == 2
    assert all(r["latency_target"].endswith("/" + fp["id"]) and float(r["latency_ms"]) > 0
               for r in rows)
    assert server.text().count("measured") >= before + 2  # search + budget check + re-timing
    env = json.loads((tmp_path / "r" / "env.json").read_text())
    assert env["latency_target"]["id"] == fp["id"] and env["runtime"] == "onnxruntime"
    from nasl.export.latency_check import verify_latency  # what `nasl export` verifies with
    from nasl.export.pipeline import remote_of_run
    from nasl.space import load_space

    arch = load_space(tiny_space).to_arch(load_space(tiny_space).baselines["small_g3"])
    check = verify_latency(arch, {"median_ms": 1.0}, repeats=3, remote=remote_of_run(env))
    assert check["latency_target"].endswith(fp["id"]) and check["ratio"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("required", [True, False])
def test_server_killed_mid_search(tiny_space, tmp_path, monkeypatch, capsys, required):
    from nasl.search import SearchOptions, run_search
    from nasl.space import load_space

    monkeypatch.setattr(rm, "BACKOFF_S", 0.01)
    token = _token(tmp_path / "token")
    server = Server(tmp_path, token)

    class KillOnFirstComplete(Listener):
        def trial_ended(self, event: TrialEnded) -> None:
            if event.state == "complete":
                server.stop()

    kill_on_first_complete = KillOnFirstComplete()

    opts = SearchOptions(name="k", runs_dir=tmp_path, trials=4, epochs=1, confirm_seeds=0,
                         show_progress=False, target_remote=server.address,
                         token_file=str(token), target_required=required)
    try:
        if required:
            with pytest.raises(TargetGone) as e:
                run_search(load_space(tiny_space), opts, listeners=[kill_on_first_complete])
            msg = str(e.value)
            assert isinstance(e.value, NaslError) and e.value.exit_code == 1
            assert "unreachable" in msg and "1 completed trial(s) kept" in msg and "\n" not in msg
        else:
            out = run_search(load_space(tiny_space), opts, listeners=[kill_on_first_complete])
            assert out.trained == 1 and not out.interrupted
            said = [line for line in capsys.readouterr().err.splitlines() if "unreachable" in line]
            assert len(said) == 1 and "no new trials are started" in said[0]
    finally:
        server.stop()
    rows = _rows(tmp_path / "k")
    assert [r["state"] for r in rows if r["state"] == "COMPLETE"] == ["COMPLETE"]
    failed = [r for r in rows if r["state"] == "FAIL"]
    assert len(failed) == 1 and failed[0]["reason"].startswith("latency not measured: remote")


def test_ray_resource_places_latency_on_that_node(tiny_space, monkeypatch):
    """target.ray_resource reaches Ray's task options (one machine: Ray itself is faked)."""
    import types

    from nasl.search.objective import Evaluator, latency_task_options
    from nasl.search.options import SearchOptions, resolve_settings
    from nasl.space import load_space

    tiny_space.write_text(tiny_space.read_text().replace("device: cpu}",
                                                         "device: cpu, ray_resource: jetson}"))
    space = load_space(tiny_space)
    settings = resolve_settings(space, SearchOptions())
    assert settings.ray_resource == "jetson"
    assert latency_task_options(settings) is None  # Ray not running: measured here
    asked: list[dict] = []

    def remote(**options):
        asked.append(options)
        return lambda f: types.SimpleNamespace(remote=lambda *a: f(*a))

    fake = types.SimpleNamespace(is_initialized=lambda: True, remote=remote, get=lambda x: x)
    monkeypatch.setitem(sys.modules, "ray", fake)
    lat = Evaluator(space, settings).latency(space.to_arch(space.baselines["small_g3"]), repeats=2)
    assert asked == [{"resources": {"jetson": 1}, "num_cpus": 1, "max_retries": 0}]
    assert lat.repeats == 2 and lat.device == "cpu"


def test_bad_remote_settings_end_in_one_line(tiny_space, tmp_path, capsys):
    from nasl.cli import main

    token = _token(tmp_path / "t")
    base = ["search", str(tiny_space), "--trials", "1", "--quiet", "--runs-dir", str(tmp_path)]
    cases = [
        (["--target-remote", "nohost"], "expected HOST:PORT"),
        (["--target-remote", "127.0.0.1:9"], "a token file is required"),
        (["--token-file", str(token)], "only used with --target-remote"),
        (["--target-remote", "127.0.0.1:9", "--token-file", str(tmp_path / "none")], "token file"),
        (["--target-remote", "127.0.0.1:9", "--token-file", str(token), "--runtime", "torch"],
         "onnxruntime only"),
    ]
    for extra, what in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert what in err and len(err.splitlines()) == 1, err
    assert not any(tmp_path.glob("tiny-*"))  # nothing written
    token.chmod(0o644)
    assert main(["latency", "serve", "--token-file", str(token)]) == 2
    assert "chmod 600" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(tiny_space.read_text().replace("device: cpu}", "device: cpu, remote: jetson}"))
    assert main(["space", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "target.remote" in err and "HOST:PORT" in err


def test_negative_content_length_is_refused(served):
    server, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/measure")
    conn.putheader("Content-Length", "-5")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 400 and "Content-Length" in json.loads(resp.read())["error"]
    conn.close()
    assert server.proc.poll() is None
