"""Latency on the export's card: what the search measured, and the same network timed again
at export time in the same runtime, device, threads, batch and dtype.

In: a trial's latency fields, or a target ArchConfig. Out: dicts for ``card.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasl.common.record import TrialRecord
from nasl.network.arch import ArchConfig


def latency_facts(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The card's "search" latency row from a trial's record (its user attributes with the
    final re-timing applied) → facts, or None when no latency was measured."""
    rec = TrialRecord.from_attrs(attrs)
    if rec.latency_ms is None:
        return None
    detail = rec.latency or {}
    return {"median_ms": rec.latency_ms, "p10_ms": rec.latency_p10_ms,
            "p90_ms": rec.latency_p90_ms, "device": rec.device, "device_name": rec.device_name,
            "latency_target": rec.latency_target,
            **{k: detail.get(k) for k in ("threads", "batch_size", "dtype", "repeats", "clock")},
            "runtime": detail.get("runtime") or "torch",
            "source": ("re-measured at the end of the search"
                       if rec.latency_search_ms is not None else "measured during the search")}


def verify_latency(target: ArchConfig, searched: Mapping[str, Any] | None, *,
                   runtime: str = "torch", device: str = "auto", repeats: int = 30,
                   remote: Any = None) -> dict[str, Any]:
    """Time the target network now in the runtime (and on the device, threads, batch, dtype)
    the search used → facts for the card's "export time" row, with ``ratio`` to the search.

    ``searched``: the search's latency facts (their ``runtime``/``device``/``threads``/... win
    over the arguments). ``remote``: the run's :class:`nasl.latency.remote.RemoteTarget`,
    which then times it. A runtime or device that is not available here, or a remote target
    that is gone, gives ``{"error": why}`` instead of failing the export.
    """
    from nasl.latency.remote import RemoteRefused, RemoteUnavailable
    from nasl.latency.timing import measure_latency
    from nasl.network.builder import build_model

    s = dict(searched or {})
    rt = s.get("runtime") or runtime
    dev = s.get("device") or device
    shape = (target.in_channels, target.input_size, target.input_size)
    how = {"batch_size": s.get("batch_size") or 1, "dtype": s.get("dtype") or "fp32",
           "threads": s.get("threads") or 1, "warmup": 5, "repeats": repeats,
           "clock": s.get("clock") or "wall"}
    try:
        if remote is not None:
            rt, dev = "onnxruntime", remote.address
            m = remote.measure(build_model(target, seed=0), shape, **how)
        else:
            m = measure_latency(build_model(target, seed=0), shape, device=dev, runtime=rt, **how)
    except (RemoteUnavailable, RemoteRefused, ValueError) as e:
        return {"runtime": rt, "device": dev, "error": str(e).splitlines()[0]}
    out = {k: getattr(m, k) for k in ("median_ms", "p10_ms", "p90_ms", "device", "device_name",
                                      "threads", "batch_size", "dtype", "repeats", "runtime",
                                      "cpu_ratio", "clock")}
    if getattr(m, "fingerprint", None):
        out["latency_target"] = m.target
    if s.get("median_ms"):
        out["ratio"] = m.median_ms / float(s["median_ms"])
    return out
