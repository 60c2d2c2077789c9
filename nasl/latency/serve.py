"""``nasl latency serve``: measure the latency of ONNX models sent by a search, on this device.

In: a token file, the device and limits. Out: an HTTP server (stdlib ``ThreadingHTTPServer``)
with two signed endpoints:

- ``GET /info`` → ``{"fingerprint": {...}}`` (host, OS, CPU/GPU, runtime versions, id);
- ``POST /measure?warmup=W&repeats=R&threads=T&clock=wall`` with an ONNX model as the body →
  ``{"latency": <nasl.latency.timing.Latency fields>, "fingerprint": {...}}``.

Every request is authenticated (:class:`nasl.latency.wire.Verifier`: HMAC, time window,
nonce once). Refusals (bad or missing signature, replay, oversize body, pickle, not ONNX,
dynamic shapes, busy past the time limit) are logged and answered with
``{"error": "...", "status": N}``; the server keeps serving. Measurements run one at a
time, each under :func:`nasl.hardware.devices.device_lock`, so a nasl search on the same machine
never trains beside a timing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nasl.hardware.devices import device_lock, resolve_device
from nasl.latency.timing import latency_of, time_runner
from nasl.latency.wire import Refused, Verifier, check_model, fingerprint

log = logging.getLogger("nasl.latency.serve")

#: Per-request limits (the command's defaults).
MAX_MB, TIME_LIMIT_S, READ_TIMEOUT_S = 64.0, 120.0, 30.0
MAX_REPEATS, MAX_WARMUP, MAX_ELEMENTS = 1000, 200, 64 * 2**20
_DTYPES = {1: "fp32", 10: "fp16"}  # onnx.TensorProto.FLOAT, FLOAT16


class LatencyService:
    """What the server does, without HTTP: verify, check, measure (one at a time)."""

    def __init__(self, token: bytes, *, device: str = "auto", max_threads: int = 64,
                 max_bytes: int = int(MAX_MB * 2**20), time_limit: float = TIME_LIMIT_S,
                 window: float = 60.0):
        from nasl.latency.runtime import ort_providers

        self.device = resolve_device(device)
        ort_providers(self.device)  # RuntimeUnavailable (a ValueError) without a provider
        self.verifier = Verifier(token, window)
        self.max_threads, self.max_bytes, self.time_limit = max_threads, max_bytes, time_limit
        self.fingerprint = fingerprint(self.device)
        self._one = threading.Lock()

    def measure(self, body: bytes, query: dict[str, str]) -> dict[str, Any]:
        """Time the ONNX model in ``body`` → the JSON answer; :class:`Refused` if not allowed."""
        deadline = time.monotonic() + self.time_limit
        model = check_model(body)
        warmup = _int(query, "warmup", 5, 0, MAX_WARMUP)
        repeats = _int(query, "repeats", 20, 1, MAX_REPEATS)
        threads = _int(query, "threads", 1, 1, self.max_threads)
        clock = query.get("clock", "wall")
        if clock not in ("wall", "cpu") or clock == "cpu" and (self.device != "cpu" or threads != 1):
            raise Refused(400, f"clock {clock!r}: expected wall, or cpu on a CPU device with 1 thread")
        arrays, dtype, shape = _inputs(model)
        if not self._one.acquire(timeout=self.time_limit):
            raise Refused(503, f"busy: another measurement held the device for {self.time_limit:g} s")
        try:
            with device_lock(self.device, timeout=max(0.0, deadline - time.monotonic())):
                from nasl.latency.runtime import ort_runner

                try:
                    runner = ort_runner(body, arrays, self.device, threads)
                    runner.run()
                except Exception as e:  # noqa: BLE001 - ORT raises many types for bad graphs
                    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
                    raise Refused(415, f"onnxruntime cannot run this model: {type(e).__name__}: "
                                       f"{first}") from None
                times, ratio, used = time_runner(runner, self.device, warmup=warmup,
                                                 repeats=repeats, clock=clock, deadline=deadline)
        except TimeoutError as e:
            raise Refused(503, f"time limit {self.time_limit:g} s: {e}") from None
        finally:
            self._one.release()
        lat = latency_of(times, device=self.device, warmup=warmup, threads=used,
                         batch_size=shape[0] if shape else 1, dtype=dtype, cpu_ratio=ratio,
                         input_shape=shape, channels_last=False, runtime="onnxruntime", clock=clock)
        return {"latency": lat.to_dict(), "fingerprint": self.fingerprint}


def _int(query: dict[str, str], key: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(key, str(default))
    try:
        v = int(raw)
    except ValueError:
        v = lo - 1
    if not lo <= v <= hi:
        raise Refused(400, f"{key}={raw[:20]!r}: expected an integer in {lo}..{hi}")
    return v


def _inputs(model: Any) -> tuple[dict[str, Any], str, tuple[int, ...]]:
    """Random inputs for the graph's inputs (static shapes, fp32/fp16) → (arrays, dtype,
    shape of the first input)."""
    import numpy as np

    consts = {t.name for t in model.graph.initializer}
    arrays: dict[str, Any] = {}
    dtype, first = "fp32", ()
    rng = np.random.default_rng(0)
    for i in (i for i in model.graph.input if i.name not in consts):
        t = i.type.tensor_type
        dims = tuple(int(d.dim_value) for d in t.shape.dim)
        if not dims or any(d < 1 for d in dims) or any(d.dim_param for d in t.shape.dim):
            raise Refused(415, f"input {i.name!r} has no static shape: export with fixed shapes")
        if t.elem_type not in _DTYPES:
            raise Refused(415, f"input {i.name!r}: element type {t.elem_type} (expected float32/16)")
        if int(np.prod(dims)) > MAX_ELEMENTS:
            raise Refused(413, f"input {i.name!r} of shape {dims} is too large")
        dtype = _DTYPES[t.elem_type]
        arrays[i.name] = rng.standard_normal(dims).astype(np.float16 if dtype == "fp16" else np.float32)
        first = first or dims
    return arrays, dtype, first


class _Handler(BaseHTTPRequestHandler):
    server_version = "nasl-latency/1"
    protocol_version = "HTTP/1.0"
    timeout = READ_TIMEOUT_S  # seconds to read a request (headers and body)
    service: LatencyService  # set by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._handle("POST")

    def _handle(self, method: str) -> None:
        svc, who = self.service, self.client_address[0]
        t0 = time.perf_counter()
        try:
            body = self._body(method)
            svc.verifier.check(method, self.path, self.headers, body)
            url = urllib.parse.urlsplit(self.path)
            if method == "GET" and url.path == "/info":
                answer: dict[str, Any] = {"fingerprint": svc.fingerprint}
            elif method == "POST" and url.path == "/measure":
                query = dict(urllib.parse.parse_qsl(url.query))
                answer = svc.measure(body, query)
                lat = answer["latency"]
                log.info("measured %s: %.3f ms median of %d (%.1f s)", who, lat["median_ms"],
                         lat["repeats"], time.perf_counter() - t0)
            else:
                raise Refused(404, f"no endpoint {method} {url.path} (GET /info, POST /measure)")
            self._reply(200, answer)
        except Refused as e:
            log.warning("refused %s %s from %s: %d %s", method, self.path[:80], who, e.status, e.message)
            self._reply(e.status, {"error": e.message, "status": e.status})
        except Exception as e:  # noqa: BLE001 - one request's failure never stops the server
            log.exception("error on %s %s from %s", method, self.path[:80], who)
            self._reply(500, {"error": f"{type(e).__name__}: {e}"[:300], "status": 500})

    def _body(self, method: str) -> bytes:
        raw = self.headers.get("Content-Length")
        if raw is None:
            if method == "POST":
                raise Refused(411, "Content-Length required")
            return b""
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if n < 0:
            raise Refused(400, f"bad Content-Length {raw[:20]!r}")
        limit = self.service.max_bytes
        if n > limit:
            if n <= 2 * limit:  # drain it so the client reads the answer, not a reset
                left = n
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
            raise Refused(413, f"body of {n} bytes is over the limit of {limit} bytes "
                               "(--max-mb on the server)")
        try:
            body = self.rfile.read(n)
        except TimeoutError:
            raise Refused(408, f"the body was not sent within {self.timeout:g} s") from None
        if len(body) != n:
            raise Refused(400, f"body shorter than Content-Length ({len(body)} < {n})")
        return body

    def _reply(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away
            log.info("client %s left before the answer", self.client_address[0])


def make_server(service: LatencyService, host: str, port: int) -> ThreadingHTTPServer:
    """A threading HTTP server bound to ``host:port`` (0: a free port) serving ``service``."""
    handler = type("Handler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
