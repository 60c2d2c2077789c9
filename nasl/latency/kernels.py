"""A network as fusion-aware kernels with their exact shapes (the unit of the latency model).

In: a built network (``nn.Module``, on a real or the meta device) and its input shape.
Out: :class:`Kernel` s in execution order. The module is traced with ``torch.fx`` and its
graph cut into groups that a deployment runtime runs as one kernel: a convolution (or
linear layer) with the batch norm and activation that follow it (ONNX Runtime fuses them;
eager torch runs them back to back), an addition or concatenation with the activation that
follows it, a channel shuffle (its view/transpose/reshape), a pooling, a mean. Each kernel
has a ``kind`` (``dwconv3x3_s2``, ``conv1x1_g4``, ``add``, ...), a ``key`` unique to its
exact configuration and input shapes (the lookup key), and ``features`` for regression
(MACs, input elements, output elements, parameters). :func:`kernel_module` rebuilds a
kernel as a standalone ``GraphModule`` to time it.

Memory formats flow between kernels: in a channels-last network a channel shuffle's
reshape hands the next kernel a contiguous (NCHW) tensor, which that kernel converts as it
runs (a depthwise convolution then costs 20-50 % more on this CPU). :func:`kernels` tracks
each tensor's format through the graph (:func:`tensor_formats`, the rules PyTorch's CPU
kernels follow and the meta device does not) and records it per input; a kernel
with an input in the other format gets ``+nchw`` (or ``+cl``) on its kind, so it is timed
and looked up as it runs in the network.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from nasl.network.blocks import channel_shuffle

FEATURES = ("macs", "in_elems", "out_elems", "params")
# The version of the rules that cut a network into kernels; part of a target's fingerprint,
# so a predictor stored under older rules is not used (2: memory formats tracked, 2026-12-07).
KERNEL_RULES = 2
_ACT_FUNCS = {torch.relu, torch.nn.functional.relu, torch.sigmoid}
_ACT_MODULES = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Hardswish, nn.SiLU, nn.GELU)
_NORM_MODULES = (nn.BatchNorm2d, nn.BatchNorm1d)
_NOOP_MODULES = (nn.Identity, nn.Dropout, nn.Dropout2d)


@dataclass(frozen=True)
class Kernel:
    """One fused group of operations at its exact shapes.

    ``nodes``: names of the traced graph's nodes in the group; ``inputs``: shapes of the
    tensors it reads; ``features``: values named by :data:`FEATURES`.
    """

    kind: str
    key: str
    nodes: tuple[str, ...]
    inputs: tuple[tuple[int, ...], ...]
    features: tuple[float, ...]
    formats: tuple[str, ...] = ()  # per input: "cl", "nchw" (4-D) or "" (anything else)


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` trace of ``model`` with the channel shuffle kept as one call."""
    tracer = fx.Tracer(autowrap_functions=(channel_shuffle,))
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph)


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(str(node.target)) if node.op == "call_module" else None


def _is(gm: fx.GraphModule, node: fx.Node, types: tuple[type, ...]) -> bool:
    return isinstance(_module(gm, node), types)


def _is_act(gm: fx.GraphModule, node: fx.Node) -> bool:
    return (_is(gm, node, _ACT_MODULES) or (node.op == "call_function" and node.target in _ACT_FUNCS)
            or (node.op == "call_method" and node.target == "relu"))


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _head_kind(gm: fx.GraphModule, node: fx.Node) -> str | None:
    """The kind of a group starting at ``node`` (None: the node costs nothing)."""
    mod = _module(gm, node)
    if isinstance(mod, nn.Conv2d):
        k, s, g = mod.kernel_size[0], mod.stride[0], mod.groups
        if g > 1 and g == mod.in_channels == mod.out_channels:
            return f"dwconv{k}x{k}_s{s}"
        return f"conv{k}x{k}_g{g}_s{s}" if k > 1 else f"conv1x1_g{g}"
    if isinstance(mod, nn.Linear):
        return "linear"
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{type(mod).__name__.lower()}{mod.kernel_size}_s{mod.stride}"
    if isinstance(mod, _NOOP_MODULES):
        return None
    if node.op == "call_function" and node.target is channel_shuffle:
        return "shuffle"
    if node.op == "call_function" and node.target in (operator.add, torch.add):
        return "add"
    if node.op == "call_function" and node.target is torch.cat:
        return "concat"
    if _is_act(gm, node):
        return "act"
    if node.op == "call_method" and node.target == "mean":
        return "mean"
    if node.op in ("call_module", "call_function", "call_method"):
        return "other"
    return None


def _group(gm: fx.GraphModule, head: fx.Node, kind: str) -> list[fx.Node]:
    """``head`` plus the BN and activation it fuses with (each the sole user of the last)."""
    group = [head]
    fuse_bn = kind.startswith(("conv", "dwconv", "linear"))
    fuse_act = fuse_bn or kind in ("add", "concat")
    while (nxt := _only_user(group[-1])) is not None:
        if fuse_bn and _is(gm, nxt, _NORM_MODULES) and len(group) == 1:
            group.append(nxt)
        elif fuse_act and _is_act(gm, nxt):
            group.append(nxt)
            break
        else:
            break
    return group


def _numel(node: fx.Node) -> int:
    meta = node.meta.get("tensor_meta")
    return int(torch.Size(meta.shape).numel()) if meta is not None else 0


def _shape(node: fx.Node) -> tuple[int, ...]:
    return tuple(int(s) for s in node.meta["tensor_meta"].shape)


def _inputs(group: Sequence[fx.Node]) -> list[fx.Node]:
    inside = set(group)
    out: list[fx.Node] = []
    for n in group:
        for a in n.all_input_nodes:
            if a not in inside and a not in out:
                out.append(a)
    return out


def _features(gm: fx.GraphModule, group: Sequence[fx.Node], inputs: Sequence[fx.Node]
              ) -> tuple[float, ...]:
    macs = params = 0
    for n in group:
        mod = _module(gm, n)
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs += _numel(n) * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            macs += _numel(n) * mod.in_features
        if mod is not None:
            params += sum(p.numel() for p in mod.parameters(recurse=False))
    return (float(macs), float(sum(_numel(a) for a in inputs)), float(_numel(group[-1])),
            float(params))


def _signature(gm: fx.GraphModule, n: fx.Node) -> str:
    mod = _module(gm, n)
    if mod is not None:
        return repr(mod).replace("\n", "").replace(" ", "")
    target = getattr(n.target, "__name__", str(n.target))
    consts = [repr(a) for a in (*n.args, *n.kwargs.values()) if not isinstance(a, fx.Node)]
    return f"{target}({','.join(consts)})"


def channels_last_run(target: Mapping[str, Any]) -> bool:
    """Whether a latency target (its facts: ``channels_last``, ``runtime``) runs networks
    in channels-last format: a torch runtime with ``channels_last`` set (ONNX Runtime is
    given NCHW)."""
    return bool(target.get("channels_last", True)) and target.get("runtime", "torch") != "onnxruntime"


def _is_4d(node: fx.Node) -> bool:
    meta = node.meta.get("tensor_meta")
    return meta is not None and hasattr(meta, "shape") and len(meta.shape) == 4


def tensor_formats(gm: fx.GraphModule, channels_last: bool) -> dict[fx.Node, str]:
    """Each 4-D value's memory format ("cl" or "nchw") when the network runs with its
    input and weights in channels-last (``channels_last``) or contiguous format.

    The rules PyTorch's CPU kernels follow (tests/test_kernel_formats.py checks them
    against real tensors on every shipped family; not checked on CUDA): a convolution's
    output is channels-last if its input or its weight is; a channel shuffle (view,
    transpose, reshape) with more than one group returns a contiguous tensor; a
    concatenation is channels-last only if all its inputs are; every other operation keeps
    the format of its first tensor input. (The meta device's convolution always returns a
    contiguous tensor, so shapes are traced there but formats are derived here.)
    ``gm`` must carry shapes (``ShapeProp``)."""
    fmt: dict[fx.Node, str] = {}
    base = "cl" if channels_last else "nchw"  # the network's input and weights
    for n in gm.graph.nodes:
        if not _is_4d(n):
            continue
        ins = [fmt[a] for a in n.all_input_nodes if a in fmt]
        if n.op == "placeholder":
            fmt[n] = base
        elif _is(gm, n, (nn.Conv2d,)):
            fmt[n] = "cl" if "cl" in ins or channels_last else "nchw"
        elif n.op == "call_function" and n.target is channel_shuffle:
            groups = n.args[1] if len(n.args) > 1 else n.kwargs.get("groups", 2)
            fmt[n] = ins[0] if isinstance(groups, int) and groups <= 1 and ins else "nchw"
        elif n.op == "call_function" and n.target is torch.cat:
            fmt[n] = "cl" if ins and all(f == "cl" for f in ins) else "nchw"
        else:
            fmt[n] = ins[0] if ins else base
    return fmt


def _unambiguous(shape: Sequence[int]) -> bool:
    """A 4-D shape whose two formats lay the data out differently (H·W > 1 and C > 1)."""
    return len(shape) == 4 and shape[1] > 1 and shape[2] * shape[3] > 1


def kernels(model: nn.Module, input_shape: Sequence[int], *, channels_last: bool = False
            ) -> tuple[fx.GraphModule, list[Kernel]]:
    """(traced module with shapes, kernels in execution order) of ``model`` on an input of
    ``input_shape`` (N, C, H, W). Works on the meta device (no weights, no compute).
    ``channels_last``: the network runs with its input and weights in channels-last format
    (as nasl times a torch target); each kernel's ``formats`` then say in which format its
    inputs arrive, and a kernel fed the other format is a kind of its own (``+nchw``)."""
    gm = trace(model)
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    with torch.inference_mode():
        ShapeProp(gm).propagate(torch.zeros(tuple(input_shape), device=device))
    fmt = tensor_formats(gm, channels_last)
    expected = "cl" if channels_last else "nchw"
    done: set[fx.Node] = set()
    out: list[Kernel] = []
    for node in gm.graph.nodes:
        if node in done:
            continue
        kind = _head_kind(gm, node)
        if kind is None:
            continue
        group = _group(gm, node, kind)
        done.update(group)
        ins = _inputs(group)
        shapes = tuple(_shape(a) for a in ins)
        formats = tuple(fmt.get(a, "") for a in ins)
        other = sorted({f for f, s in zip(formats, shapes, strict=True)
                        if f and f != expected and _unambiguous(s)})
        if other:
            kind = kind + "+" + "+".join(other)
        key = kind + "|" + ";".join(_signature(gm, n) for n in group) + "|" + repr(shapes)
        out.append(Kernel(kind, key, tuple(n.name for n in group), shapes,
                          _features(gm, group, ins), formats))
    return gm, out


def kernel_module(gm: fx.GraphModule, kernel: Kernel) -> fx.GraphModule:
    """The kernel as a standalone module taking its inputs in order (shares ``gm``'s
    submodules, so it holds their weights)."""
    by_name = {n.name: n for n in gm.graph.nodes}
    group = [by_name[name] for name in kernel.nodes]
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {a: graph.placeholder(f"x{i}") for i, a in enumerate(_inputs(group))}
    for n in group:
        env[n] = graph.node_copy(n, lambda a: env[a])
    graph.output(env[group[-1]])
    return fx.GraphModule(gm, graph)
