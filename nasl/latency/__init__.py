"""Latency where the model will run: deployment runtimes and a calibrated latency model.

- :mod:`nasl.latency.timing`: :func:`measure_latency`, the one timing loop (a
  :class:`Latency`), for every runtime and device.
- :mod:`nasl.latency.runtime`: torch / onnxruntime / torch.compile runners that
  :func:`nasl.latency.timing.measure_latency` times (``runtime=``).
- :mod:`nasl.latency.kernels`: a network as fusion-aware kernels (conv + BN + activation is
  one kernel) with their exact shapes.
- :mod:`nasl.latency.predictor`: measure kernels and a few designs, fit, save/load keyed by
  a fingerprint of the target, predict, :func:`screen` a latency budget.
- :mod:`nasl.latency.cli`: ``nasl latency calibrate|predict|serve`` (``add_parser``).
- :mod:`nasl.latency.serve` / :mod:`nasl.latency.remote` / :mod:`nasl.latency.wire`: a
  remote target: the server on the device, the client a search uses, the signed wire format
  (docs/remote-latency.md).
"""

from nasl.latency.runtime import RUNTIMES, RuntimeUnavailable, check_runtime

__all__ = ["RUNTIMES", "RuntimeUnavailable", "check_runtime"]
