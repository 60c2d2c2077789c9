"""What travels between a search and a remote latency target, and how it is checked.

In: a token file, a request (method, path, headers, body). Out: signed headers
(:func:`sign`), a verdict on a request (:class:`Verifier`, raising :class:`Refused`), a
verdict on a body (:func:`check_model`) and the device's :func:`fingerprint`.

Security model (docs/remote-latency.md): every request carries ``X-Nasl-Timestamp``,
``X-Nasl-Nonce`` and ``X-Nasl-Signature`` = hex HMAC-SHA256 with the shared token over
``METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n sha256(BODY)``. The server compares in constant
time, accepts a timestamp within ``window`` seconds of its clock and a nonce only once in
that window (so a captured request cannot be replayed). Bodies are ONNX models only: a
pickle (or a zip archive holding one, as ``torch.save`` writes) is refused before any
parsing, and an ONNX model that points at external data files is refused too.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import os
import platform
import secrets
import socket
import stat
import sys
import threading
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Headers of a signed request.
TIMESTAMP, NONCE, SIGNATURE = "X-Nasl-Timestamp", "X-Nasl-Nonce", "X-Nasl-Signature"
#: Seconds a request's timestamp may differ from the server's clock (and a nonce is kept).
WINDOW_S = 60.0
MIN_TOKEN_CHARS = 16


class Refused(Exception):
    """A request the server refuses: HTTP ``status`` and one clear line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def read_token(path: str | os.PathLike[str]) -> bytes:
    """The shared secret in ``path`` (surrounding whitespace stripped).

    ``ValueError`` naming the file when it is missing, shorter than 16 characters, or
    readable by group or others on POSIX (``chmod 600 FILE``).
    """
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
        token = p.read_bytes().strip()
    except OSError as e:
        raise ValueError(f"token file {str(p)!r}: {e.strerror}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"token file {str(p)!r} is readable by others (mode "
                         f"{stat.S_IMODE(mode):o}); run: chmod 600 {p}")
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"token file {str(p)!r}: the token must be at least {MIN_TOKEN_CHARS} "
                         "characters (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
    return token


def _message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join([method.upper(), path, timestamp, nonce,
                      hashlib.sha256(body).hexdigest()]).encode()


def signature(token: bytes, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of one request."""
    return hmac.new(token, _message(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def sign(token: bytes, method: str, path: str, body: bytes = b"",
         now: float | None = None) -> dict[str, str]:
    """The three headers that authenticate ``method path`` with ``body`` (fresh nonce)."""
    ts = f"{time.time() if now is None else now:.3f}"
    nonce = secrets.token_hex(16)
    return {TIMESTAMP: ts, NONCE: nonce, SIGNATURE: signature(token, method, path, ts, nonce, body)}


class Verifier:
    """Checks signed requests against one token; remembers nonces for ``window`` seconds."""

    def __init__(self, token: bytes, window: float = WINDOW_S):
        self.token, self.window = token, window
        self._seen: dict[str, float] = {}  # nonce -> time it may be forgotten
        self._lock = threading.Lock()

    def check(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        """Return when the request is authentic and fresh, else raise :class:`Refused` (401)."""
        ts, nonce, sig = (headers.get(h) for h in (TIMESTAMP, NONCE, SIGNATURE))
        if not ts or not nonce or not sig:
            raise Refused(401, f"unauthenticated: headers {TIMESTAMP}, {NONCE} and {SIGNATURE} "
                               "are required")
        if len(nonce) > 128 or len(sig) > 128:
            raise Refused(401, "unauthenticated: malformed nonce or signature")
        expected = signature(self.token, method, path, ts, nonce, body)
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise Refused(401, "bad signature: wrong token (or the request was altered)")
        try:
            age = abs(time.time() - float(ts))
        except ValueError:
            age = math.nan
        if not math.isfinite(age):
            raise Refused(401, f"bad timestamp {ts[:40]!r}")
        if age > self.window:
            raise Refused(401, f"stale request: timestamp {age:.0f} s from the server's clock "
                               f"(window {self.window:g} s; check both clocks)")
        now = time.monotonic()
        with self._lock:
            for n in [n for n, t in self._seen.items() if t < now]:
                del self._seen[n]
            if nonce in self._seen:
                raise Refused(401, "replayed request: this nonce was already used")
            self._seen[nonce] = now + 2 * self.window


def is_pickle(body: bytes) -> bool:
    """True for a pickle (protocol 2+ opcode ``\\x80``) or a zip archive holding a ``.pkl``
    entry (what ``torch.save`` and torch.export archives carry)."""
    if body[:1] == b"\x80":
        return True
    if body[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as z:
                return any(n.endswith(".pkl") for n in z.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return False
    return False


def check_model(body: bytes) -> Any:
    """The ONNX ``ModelProto`` in ``body``, or :class:`Refused` (415) saying why not.

    Refused: an empty body, a pickle or a zip with one, bytes that are not an ONNX model
    (protobuf parse, a graph with nodes and inputs), and tensors stored as external data
    (file paths on the server).
    """
    if not body:
        raise Refused(400, "empty body: send an ONNX model")
    if is_pickle(body):
        raise Refused(415, "pickle refused: only ONNX models are accepted (a pickle can carry code)")
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError):
        raise Refused(415, "not an ONNX model: the body does not parse as onnx.ModelProto") from None
    if not model.graph.node or not model.graph.input or model.ir_version < 3:
        raise Refused(415, "not an ONNX model: no graph (nodes and inputs) in the body")
    if _external(model.graph):
        raise Refused(415, "ONNX model with external data refused: embed every tensor")
    return model


def _external(graph: Any) -> bool:
    import onnx

    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
        return True
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t") and a.t.data_location == onnx.TensorProto.EXTERNAL:
                return True
            if any(_external(g) for g in [*a.graphs, *([a.g] if a.HasField("g") else [])]):
                return True
    return False


def fingerprint(device: str) -> dict[str, Any]:
    """What decides a latency besides the model: host, OS, CPU/GPU model, runtime versions,
    plus ``id`` (12 hex digits of the rest)."""
    import json

    import onnxruntime

    from nasl.hardware.devices import cpu_name

    gpu = None
    if device.startswith("cuda"):
        import torch

        gpu = torch.cuda.get_device_name(device)
    facts: dict[str, Any] = {
        "host": socket.gethostname(), "os": platform.platform(), "machine": platform.machine(),
        "cpu": cpu_name(), "gpu": gpu, "device": device, "runtime": "onnxruntime",
        "onnxruntime": onnxruntime.__version__, "python": sys.version.split()[0],
        "providers": onnxruntime.get_available_providers()}
    blob = json.dumps(facts, sort_keys=True).encode()
    return {**facts, "id": hashlib.sha256(blob).hexdigest()[:12]}


def label(fp: Mapping[str, Any]) -> str:
    """One line for a trials.csv cell: ``host/device/onnxruntime X/id``."""
    hw = fp.get("gpu") or fp.get("cpu")
    return f"{fp.get('host')}/{hw}/onnxruntime {fp.get('onnxruntime')}/{fp.get('id')}"
