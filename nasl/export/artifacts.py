"""Write one network's export folder and check every artifact against the eager model.

In: an :class:`~nasl.network.arch.ArchConfig`, optionally the trained ``nn.Module`` built from it,
the formats wanted and the facts for the model card. Out: ``arch.json``,
``weights.safetensors``, ``model.py``, ``model.onnx``, ``model.pt2`` and ``card.md`` in one
folder, and an :class:`ExportResult` with their paths and the largest absolute difference
of each format's output from the eager model's on the same random batch.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasl.common.errors import NaslError
from nasl.export import card as card_md
from nasl.export.codegen import WEIGHTS_FILE, generate_source, load_module
from nasl.network.arch import ArchConfig

FORMATS = ("py", "onnx", "pt2")
# Largest allowed |output - eager output| per format (float32, random input), for logits of
# magnitude <= 1; larger logits (e.g. an untrained SqueezeNet, no BN) scale it by max |logit|,
# since float32 rounding grows with the values.
TOLERANCE = {"py": 1e-5, "onnx": 1e-4, "pt2": 1e-4}
FILES = {"py": "model.py", "onnx": "model.onnx", "pt2": "model.pt2"}
PARITY_BATCH = 2  # torch.export needs an example batch >= 2 for a dynamic batch dimension


class ExportParityError(RuntimeError):
    """An exported artifact computes something else than the eager model (a nasl bug)."""


@dataclass
class ExportResult:
    """What ``export_arch`` wrote.

    ``files``: artifact name (``model.py``, ``weights.safetensors``, ``model.onnx``,
    ``model.pt2``, ``arch.json``, ``card.md``) → path. ``max_diff``: format → largest
    absolute difference to the eager output. ``card``: the facts written into card.md.
    """

    out: Path
    arch: ArchConfig
    files: dict[str, Path] = field(default_factory=dict)
    max_diff: dict[str, float] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape an export."""
    from importlib import metadata

    from nasl.run.results import versions as run_versions

    out = run_versions()
    for pkg in ("onnx", "onnxscript", "safetensors"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``"py,onnx"`` or ``["py", "onnx"]`` → a tuple in canonical order (``NaslError`` if unknown)."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    wanted = [f.strip().lower() for f in items if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise NaslError(f"--format {','.join(items)!s}: unknown format {bad[0] if bad else '(none)'!r}; "
                        f"expected a comma-separated list of {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in wanted)


def prepare_out(out: Path) -> Path:
    """Create ``out`` (with parents) and make sure files can be written there."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".nasl-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise NaslError(f"cannot write the export folder {str(out)!r}: {e.strerror or e}") from None
    return out


def _eager_copy(model: nn.Module) -> nn.Module:
    """A CPU float32 copy in eval mode with contiguous (NCHW) weights."""
    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    return net.to(memory_format=torch.contiguous_format).eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' informational logging and warnings."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                               "torch.fx.experimental.symbolic_shapes")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _diff(a: torch.Tensor, b: Any) -> float:
    return float((a - torch.as_tensor(b)).abs().max())


def write_weights(model: nn.Module, path: Path) -> None:
    """The state dict (parameters and BN buffers) as contiguous CPU tensors in safetensors."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})
    path.chmod(0o644)  # safetensors creates the file private (0600) like a temporary file


def _export_program(model: nn.Module, x: torch.Tensor) -> Any:
    batch = torch.export.Dim("batch", min=1, max=65536)
    return torch.export.export(model, (x,), dynamic_shapes=({0: batch},))


def write_pt2(program: Any, model: nn.Module, x: torch.Tensor, path: Path) -> float:
    """Save a ``torch.export`` program to ``path``; reload it and return the max difference."""
    with _quiet():
        torch.export.save(program, str(path))
        loaded = torch.export.load(str(path)).module()
    with torch.inference_mode():
        return _diff(model(x), loaded(x))


def write_onnx(program: Any, model: nn.Module, x: torch.Tensor, path: Path) -> float:
    """ONNX from the exported program (dynamo exporter, one self-contained file, input
    ``input`` and output ``logits`` with a dynamic ``batch`` axis) → ``path``; run it with
    onnxruntime and return the max difference."""
    import onnx
    import onnxruntime as ort

    with _quiet():
        torch.onnx.export(program, (x,), str(path), external_data=False, input_names=["input"],
                          output_names=["logits"], verbose=False)
    proto = onnx.load(str(path))
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(proto, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        return _diff(model(x), got)


def write_py(arch: ArchConfig, model: nn.Module, x: torch.Tensor, out: Path,
             mean: Sequence[float] | None, std: Sequence[float] | None,
             title: str | None) -> float:
    """``model.py`` beside the weights; import it, load the weights strictly, return the diff."""
    path = out / FILES["py"]
    path.write_text(generate_source(arch, mean=mean, std=std, title=title))
    loaded = load_module(path).load_model(out / WEIGHTS_FILE)
    with torch.inference_mode():
        return _diff(model(x), loaded(x))


def export_arch(arch: ArchConfig, out: Path, *, model: nn.Module | None = None,
                formats: str | Sequence[str] = FORMATS, card: dict[str, Any] | None = None,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                seed: int = 0) -> ExportResult:
    """Write ``arch``'s export folder ``out`` and verify every artifact → ExportResult.

    ``model``: the trained network built from ``arch`` (default: ``build_model(arch, seed)``,
    fresh weights). Always written: ``arch.json``, ``weights.safetensors``, ``card.md``;
    ``formats`` adds ``model.py`` ("py"), ``model.onnx`` and ``model.pt2``. ``card``: facts
    for card.md (see :mod:`nasl.export.card`); the model's own MACs/params, file sizes and
    parity are added here. ``mean``/``std``: the input normalisation, written into model.py.
    Raises ``NaslError`` (bad format, unwritable folder) or ``ExportParityError``.
    """
    from nasl.network.builder import build_model
    from nasl.network.cost import count_macs_flop_counter, count_params, size_mb

    fmts = parse_formats(formats)
    out = prepare_out(out)
    net = _eager_copy(build_model(arch, seed=seed) if model is None else model)
    shape = (1, arch.in_channels, arch.input_size, arch.input_size)
    params, macs = count_params(net), count_macs_flop_counter(net, shape)
    if params != arch.params() or macs != arch.macs():
        raise ExportParityError(f"the module has {macs} MACs / {params} params but its ArchConfig "
                                f"says {arch.macs()} / {arch.params()}")
    result = ExportResult(out=out, arch=arch)
    (out / "arch.json").write_text(arch.to_json() + "\n")
    result.files["arch.json"] = out / "arch.json"
    write_weights(net, out / WEIGHTS_FILE)
    result.files[WEIGHTS_FILE] = out / WEIGHTS_FILE

    x = torch.randn((PARITY_BATCH, *shape[1:]), generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        scale = max(1.0, float(net(x).abs().max()))
    info = dict(card or {})
    program = None
    if "onnx" in fmts or "pt2" in fmts:
        with _quiet():
            program = _export_program(net, x)
    for fmt in fmts:
        path = out / FILES[fmt]
        if fmt == "py":
            diff = write_py(arch, net, x, out, mean, std, info.get("title"))
        elif fmt == "pt2":
            diff = write_pt2(program, net, x, path)
        else:
            diff = write_onnx(program, net, x, path)
        if not math.isfinite(diff) or diff > TOLERANCE[fmt] * scale:
            raise ExportParityError(f"{path.name}: output differs from the eager model by {diff:.3g} "
                                    f"(allowed {TOLERANCE[fmt] * scale:.3g})")
        result.files[FILES[fmt]] = path
        result.max_diff[fmt] = diff

    info["model"] = {**info.get("model", {}), "input_shape": list(shape),
                     "num_classes": arch.num_classes, "macs": macs, "params": params,
                     "size_mb": size_mb(params), "arch_id": arch.id, "family": arch.family,
                     "mean": list(mean) if mean is not None else None,
                     "std": list(std) if std is not None else None}
    info["parity"] = {fmt: {"max_abs_diff": d, "tolerance": TOLERANCE[fmt] * scale, "file": FILES[fmt],
                            "max_abs_output": scale} for fmt, d in result.max_diff.items()}
    info["files"] = {name: p.stat().st_size for name, p in result.files.items()}
    info.setdefault("choices", {k: list(v) if isinstance(v, tuple) else v for k, v in arch.choices})
    result.files["card.md"] = out / "card.md"
    info["files"]["card.md"] = None
    (out / "card.md").write_text(card_md.render(info))
    result.card = info
    return result
