"""A remote latency target: send a candidate as ONNX to ``nasl latency serve``, get its latency.

In: ``HOST:PORT``, a token file and a network (``nn.Module``) with its input shape. Out: a
:class:`RemoteLatency` (every field of :class:`nasl.latency.timing.Latency`, measured there, plus the
device's fingerprint). The network is exported to ONNX in memory
(:func:`nasl.latency.runtime.onnx_bytes`); nothing else crosses the wire.

When the device cannot be reached the call retries a bounded number of times with
back-off, then raises :class:`RemoteUnavailable`; for ``cooldown`` seconds after that, calls
fail at once with the same message (no retry storm) before one new attempt. A refusal by
the server (wrong token, bad model) raises :class:`RemoteRefused` with its message.
"""

from __future__ import annotations

import copy
import dataclasses
import http.client
import json
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nasl.common.errors import NaslError
from nasl.latency.timing import DTYPES, Latency
from nasl.latency.wire import label, read_token, sign

#: Attempts after the first one, and the first back-off in seconds (doubled each time).
RETRIES, BACKOFF_S = 3, 1.0


class RemoteUnavailable(RuntimeError):
    """The remote target did not answer (down, unreachable, timed out)."""


class TargetGone(NaslError):
    """A search stops because its required remote target is gone (one line, exit status 1)."""

    exit_code = 1


class RemoteRefused(ValueError):
    """The remote target answered with an error (its message, e.g. a wrong token)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteLatency(Latency):
    """A :class:`Latency` measured by a remote target, with its ``fingerprint`` (host, OS,
    CPU/GPU, runtime versions, ``id``)."""

    fingerprint: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """One line naming the device (``host/cpu or gpu/onnxruntime X/id``)."""
        return label(self.fingerprint)


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) → (host, port); ``ValueError`` saying what is expected."""
    host, sep, port = str(address).strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"remote target {address!r}: expected HOST:PORT, e.g. jetson.local:8765")
    return host, int(port)


@dataclass
class RemoteTarget:
    """Where and how to reach ``nasl latency serve`` (picklable: Ray workers get a copy).

    ``retries`` attempts after the first, with back-off ``backoff`` × 2^i seconds;
    ``timeout``: seconds per attempt (connect, send, measure, answer); ``cooldown``: seconds
    during which later calls fail at once after the target was found unreachable;
    ``required``: the search stops (rather than going on) when the target is gone.
    """

    address: str
    token_file: str
    required: bool = False
    timeout: float = 300.0
    retries: int = field(default_factory=lambda: RETRIES)
    backoff: float = field(default_factory=lambda: BACKOFF_S)
    cooldown: float = 30.0
    _down: tuple[float, str] | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.host, self.port = parse_address(self.address)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_down"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _down=None)

    def token(self) -> bytes:
        """The shared secret (``ValueError`` naming the file when it is unusable)."""
        return read_token(self.token_file)

    # ------------------------------------------------------------------ requests
    def request(self, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
        """One signed request with bounded retries → the JSON answer.

        :class:`RemoteUnavailable` when the target cannot be reached, :class:`RemoteRefused`
        when it answers with an error.
        """
        now = time.monotonic()
        if self._down is not None and now < self._down[0]:
            raise RemoteUnavailable(self._down[1])
        token = self.token()
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                answer = self._once(token, method, path, body)
                self._down = None
                return answer
            except (OSError, http.client.HTTPException) as e:
                last = f"{type(e).__name__}: {e}"
        msg = (f"remote latency target {self.address} is unreachable after {self.retries + 1} "
               f"attempts ({last}); is `nasl latency serve` running there?")
        self._down = (time.monotonic() + self.cooldown, msg)
        raise RemoteUnavailable(msg)

    def _once(self, token: bytes, method: str, path: str, body: bytes) -> dict[str, Any]:
        headers = {**sign(token, method, path, body), "Content-Type": "application/octet-stream",
                   "Content-Length": str(len(body))}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            answer = json.loads(data)
        except ValueError:
            raise RemoteRefused(resp.status, f"remote latency target {self.address}: not a nasl "
                                             f"server (HTTP {resp.status})") from None
        if resp.status != 200:
            raise RemoteRefused(resp.status, f"remote latency target {self.address} refused: "
                                             f"{answer.get('error', answer)}")
        return dict(answer)

    def info(self) -> dict[str, Any]:
        """The target's fingerprint (a signed ``GET /info``)."""
        return dict(self.request("GET", "/info")["fingerprint"])

    def measure_onnx(self, onnx: bytes, *, warmup: int = 5, repeats: int = 20, threads: int = 1,
                     clock: str = "wall") -> RemoteLatency:
        """Latency of the ONNX model ``onnx`` measured on the target."""
        query = urllib.parse.urlencode({"warmup": warmup, "repeats": repeats, "threads": threads,
                                        "clock": clock})
        answer = self.request("POST", f"/measure?{query}", onnx)
        lat = dict(answer["latency"])
        lat["input_shape"] = tuple(lat.get("input_shape") or ())
        known = {f.name for f in dataclasses.fields(Latency)}
        return RemoteLatency(**{k: v for k, v in lat.items() if k in known},
                             fingerprint=dict(answer.get("fingerprint") or {}))

    def measure(self, model: Any, input_shape: Sequence[int], *, batch_size: int | None = None,
                dtype: str = "fp32", warmup: int = 5, repeats: int = 20, threads: int = 1,
                clock: str = "wall") -> RemoteLatency:
        """Export ``model`` (an ``nn.Module``; untouched) at ``input_shape`` (C, H, W) or
        (N, C, H, W), ``batch_size`` replacing N, in ``dtype`` to ONNX and time it there."""
        import torch

        from nasl.latency.runtime import onnx_bytes

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        shape = tuple(int(s) for s in input_shape)
        shape = (1, *shape) if len(shape) == 3 else shape
        shape = (batch_size or shape[0], *shape[1:])
        net = copy.deepcopy(model).to(device="cpu", dtype=DTYPES[dtype]).eval()
        x = torch.zeros(shape, dtype=DTYPES[dtype])
        with torch.inference_mode(False):
            onnx = onnx_bytes(net, x)
        return self.measure_onnx(onnx, warmup=warmup, repeats=repeats, threads=threads, clock=clock)

