"""Deployment runtimes a latency is measured in: eager torch, ONNX Runtime, torch.compile.

In: a module already on its device, in eval mode and in its dtype, an example input, the
runtime name, the device and the thread count. Out: a :class:`Runner` whose ``run()``
does one forward pass the way the deployed model would run, and which says how to time it
(CUDA events on torch's stream, or wall time for a runtime that synchronises itself).

- ``torch``: the eager module (today's behaviour).
- ``onnxruntime``: the module exported to ONNX in memory (TorchScript exporter, which takes
  50 ms for a small module against about 1 s for the dynamo exporter; dynamo as fallback),
  run by an ``InferenceSession`` with ``intra_op_num_threads`` = the latency thread count,
  thread spinning off (a spinning pool is what made 2-thread latency 75-130x slower under
  contention), on the CPU execution provider, or the CUDA provider for a CUDA device
  (input and output bound on the GPU, so no host copies are timed).
- ``torch.compile``: the module compiled by inductor; the compilation happens in the first
  call, before warm-up (tens of seconds on a busy CPU).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

RUNTIMES = ("torch", "onnxruntime", "torch.compile")


class RuntimeUnavailable(ValueError):
    """The runtime cannot run on this target (missing provider, unsupported dtype, ...)."""


def check_runtime(runtime: str) -> str:
    """``runtime`` if it is one of :data:`RUNTIMES`, else ``ValueError`` naming them."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    return runtime


@dataclass
class Runner:
    """One forward pass in a runtime: ``run()``; ``events``: time with CUDA events (the
    work is queued on torch's current CUDA stream) rather than wall time."""

    run: Callable[[], Any]
    runtime: str
    events: bool
    threads: int | None = None  # threads the runtime itself uses (ORT), else None


Inputs = torch.Tensor | tuple[torch.Tensor, ...]


def _tuple(x: Inputs) -> tuple[torch.Tensor, ...]:
    return (x,) if isinstance(x, torch.Tensor) else tuple(x)


def onnx_bytes(model: nn.Module, x: Inputs) -> bytes:
    """``model`` (eval mode) exported to an in-memory ONNX model for the input(s) ``x``.

    TorchScript exporter first (fast); the dynamo exporter if that fails.
    """
    xs = tuple(t.contiguous() for t in _tuple(x))
    names = ["input"] if len(xs) == 1 else [f"input{i}" for i in range(len(xs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            buf = io.BytesIO()
            torch.onnx.export(model, xs, buf, dynamo=False, input_names=names,
                              output_names=["logits"])
            return buf.getvalue()
        except Exception:  # noqa: BLE001 - any exporter failure: try the other exporter
            prog = torch.onnx.export(model, xs, dynamo=True, external_data=False, verbose=False)
            if prog is None:  # pragma: no cover - only when f= is given
                raise
            return bytes(prog.model_proto.SerializeToString())


def ort_providers(device: str) -> list[Any]:
    """Execution providers for ``device``: CPU, or CUDA (then CPU) for ``cuda:N``.

    ``RuntimeUnavailable`` if onnxruntime is missing or has no CUDA provider for a GPU.
    """
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        raise RuntimeUnavailable("runtime onnxruntime: the onnxruntime package is not "
                                 "installed (pip install onnxruntime)") from None
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeUnavailable(
                f"runtime onnxruntime on {device}: this onnxruntime has no CUDA execution provider "
                f"(has {', '.join(ort.get_available_providers())}); install onnxruntime-gpu")
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise RuntimeUnavailable(f"runtime onnxruntime: device {device!r} is not supported "
                             "(cpu or cuda)")


def ort_session(onnx: bytes, device: str, threads: int | None) -> Any:
    """An ``InferenceSession`` on ``device`` with ``threads`` intra-op threads (None: ORT's
    default), one inter-op thread, sequential execution, all graph optimisations (which fuse
    conv + BN + activation), spinning off."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or 0)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onnx, so, providers=ort_providers(device))


def _ort_runner(net: nn.Module, xs: tuple[torch.Tensor, ...], device: str,
                threads: int | None) -> Runner:
    x = xs[0]
    if x.dtype == torch.bfloat16:
        raise RuntimeUnavailable("runtime onnxruntime: dtype bf16 is not supported; use fp32 "
                                 "(or fp16 on CUDA)")
    if x.dtype == torch.float16 and not device.startswith("cuda"):
        raise RuntimeUnavailable("runtime onnxruntime: fp16 runs only on the CUDA provider; "
                                 "use fp32 on CPU")
    # the exporter drops inputs the graph does not use: feed by the session's own names
    arrays = {f"input{i}" if len(xs) > 1 else "input": t.detach().contiguous().cpu().numpy()
              for i, t in enumerate(xs)}
    return ort_runner(onnx_bytes(net, xs), arrays, device, threads)


def ort_runner(onnx: bytes, arrays: dict[str, Any], device: str, threads: int | None) -> Runner:
    """A :class:`Runner` of the ONNX model ``onnx`` (bytes) on ``device`` fed ``arrays``
    (input name → numpy array; names the graph does not use are dropped). On CUDA the
    inputs and outputs are bound on the GPU. Not called yet."""
    sess = ort_session(onnx, device, threads)
    feed = {i.name: arrays[i.name] for i in sess.get_inputs()}
    if device.startswith("cuda"):
        import onnxruntime as ort

        index = int(device.partition(":")[2] or 0)
        binding = sess.io_binding()
        for name, arr in feed.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", index))
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cuda", index)

        def run() -> Any:  # run_with_iobinding returns when the outputs are ready
            sess.run_with_iobinding(binding)

        return Runner(run, "onnxruntime", events=False, threads=threads)
    return Runner(lambda: sess.run(None, feed), "onnxruntime", events=False, threads=threads)


def make_runner(net: nn.Module, x: Inputs, *, runtime: str = "torch", device: str = "cpu",
                threads: int | None = None) -> Runner:
    """A :class:`Runner` of ``net`` on ``x`` (a tensor or a tuple of input tensors) in
    ``runtime``, called once already (so an export, a session or a compilation is not part
    of warm-up or timing).

    ``net`` must already be on ``device``, in eval mode and in the dtype of ``x``. Raises
    ``ValueError`` for an unknown runtime and :class:`RuntimeUnavailable` when the runtime
    cannot run there (the message says why).
    """
    check_runtime(runtime)
    cuda = device.startswith("cuda")
    xs = _tuple(x)
    if runtime == "onnxruntime":
        runner = _ort_runner(net, xs, device, threads)
    elif runtime == "torch.compile":
        try:
            compiled = torch.compile(net, dynamic=False)
            with torch.inference_mode():
                compiled(*xs)
        except Exception as e:  # noqa: BLE001 - inductor failures have many types
            raise RuntimeUnavailable(f"runtime torch.compile does not work on {device}: "
                                     f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
        runner = Runner(lambda: compiled(*xs), runtime, events=cuda)
    else:
        runner = Runner(lambda: net(*xs), runtime, events=cuda)
    with torch.inference_mode():
        runner.run()
    return runner
