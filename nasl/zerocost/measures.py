"""Zero-cost proxies of an untrained network: synflow, naswot, grad_norm, snip, jacob_cov.

In: a ``torch.nn.Module`` (untrained, as built), one batch of images ``x`` (N x C x H x W)
and labels ``y`` (N). Out: ``{name: float}``, higher meaning "predicted more accurate".
Definitions follow the reference implementations (Abdelfattah et al., ICLR 2021,
SamsungLabs/zero-cost-nas; Mellor et al., ICML 2021):

- ``synflow``: BN bypassed, every parameter replaced by its absolute value, float64, one
  input of ones; R = sum of the outputs; score = sum over conv/linear weights |θ ⊙ ∂R/∂θ|.
- ``naswot``: binary codes c (ReLU output > 0, per image, all ReLU modules concatenated);
  K = c·cᵀ + (1-c)·(1-c)ᵀ; score = log |det K|.
- ``grad_norm``: sum over conv/linear layers of the Frobenius norm of ∂L/∂W
  (L = mean cross-entropy on the batch).
- ``snip``: sum over conv/linear weights of |θ ⊙ ∂L/∂θ|.
- ``jacob_cov``: J = ∂(Σ outputs)/∂x per image; score = -Σ (log(λ + k) + 1/(λ + k)) over the
  eigenvalues λ of the correlation matrix of J's rows, k = 1e-5 (the NASWOT preprint's
  score as implemented in zero-cost-nas).

The caller's model, its gradients and the global RNG are never touched: every proxy runs
on a deep copy under ``torch.random.fork_rng``. Copies run in train mode (BN uses batch
statistics, as in the references) with dropout off, so the result depends only on the
weights, the batch and ``seed``.

``reset_bn=True`` (default) sets every BN γ to 1 and β to 0 in the copy: nasl initialises
the last BN γ of each ShuffleNet residual branch to zero, which at initialisation hides the
whole branch from gradient- and activation-based proxies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nasl.common.errors import NaslError

# The four proxies the issue names (the default set), plus the preprint's jacob_cov.
PROXIES: tuple[str, ...] = ("synflow", "naswot", "grad_norm", "snip")
ALL_PROXIES: tuple[str, ...] = (*PROXIES, "jacob_cov")
JACOB_K = 1e-5
_LOSS_PROXIES = frozenset({"naswot", "grad_norm", "snip"})


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple in canonical order; NaslError naming an unknown proxy."""
    names = tuple(names)
    for n in names:
        if n not in ALL_PROXIES:
            raise NaslError(f"proxy {n!r}: unknown; expected one of {', '.join(ALL_PROXIES)}")
    if not names:
        raise NaslError(f"no proxies asked for; expected some of {', '.join(ALL_PROXIES)}")
    return tuple(n for n in ALL_PROXIES if n in names)


def _weighted_layers(model: nn.Module) -> list[nn.Module]:
    """Conv and linear layers: the ones whose weights the references score."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _working_copy(model: nn.Module, reset_bn: bool, channels_last: bool) -> nn.Module:
    """Deep copy in train mode, dropout off, all parameters trainable, no gradients."""
    work = copy.deepcopy(model)
    if channels_last:
        work = work.to(memory_format=torch.channels_last)
    work.train()
    for m in work.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
        if reset_bn and isinstance(m, _BatchNorm) and m.affine:
            with torch.no_grad():
                m.weight.fill_(1.0)
                m.bias.zero_()
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    return work


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Synaptic flow of ``model`` for one input of ``input_shape`` (C, H, W); see module doc."""
    net = copy.deepcopy(model).double().eval()
    for m in net.modules():
        if isinstance(m, _BatchNorm):
            m.forward = _identity  # type: ignore[method-assign]
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    device = next(net.parameters()).device
    out = net(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    out.sum().backward()
    total = 0.0
    for layer in _weighted_layers(net):
        if layer.weight.grad is not None:
            total += float((layer.weight.detach() * layer.weight.grad).abs().sum())
    return total


def _relu_kernel_hooks(net: nn.Module, kernel: list[torch.Tensor]) -> list[Callable[[], None]]:
    """Forward hooks that add each ReLU's binary-code kernel to ``kernel[0]``."""

    def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> None:
        c = (out.detach() > 0).flatten(1).to(torch.float64)
        kernel[0] = kernel[0] + c @ c.T + (1.0 - c) @ (1.0 - c).T

    return [m.register_forward_hook(hook).remove for m in net.modules() if isinstance(m, nn.ReLU)]


def _logdet(k: torch.Tensor) -> float:
    sign, logabs = torch.linalg.slogdet(k)
    return float(logabs) if float(sign) != 0.0 else float("-inf")


def _loss_pass(net: nn.Module, x: torch.Tensor, y: torch.Tensor, names: set[str]
               ) -> dict[str, float]:
    """One forward (ReLU codes) and one cross-entropy backward → naswot, grad_norm, snip."""
    kernel = [torch.zeros((x.shape[0], x.shape[0]), dtype=torch.float64, device=x.device)]
    removers = _relu_kernel_hooks(net, kernel) if "naswot" in names else []
    try:
        out = net(x)
    finally:
        for remove in removers:
            remove()
    res: dict[str, float] = {}
    if "naswot" in names:
        res["naswot"] = _logdet(kernel[0])
    if names & {"grad_norm", "snip"}:
        F.cross_entropy(out, y).backward()
        layers = [m for m in _weighted_layers(net) if m.weight.grad is not None]
        if "grad_norm" in names:
            res["grad_norm"] = float(sum(float(m.weight.grad.norm()) for m in layers))
        if "snip" in names:
            res["snip"] = float(sum(float((m.weight.detach() * m.weight.grad).abs().sum())
                                    for m in layers))
    return res


def jacob_cov(net: nn.Module, x: torch.Tensor) -> float:
    """Score of the correlation of per-image input Jacobians (see module doc)."""
    xi = x.detach().clone().requires_grad_(True)
    out = net(xi)
    out.backward(torch.ones_like(out))
    jac = xi.grad.reshape(xi.shape[0], -1).to(torch.float64).cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return float("nan")
    lam = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(lam + JACOB_K) + 1.0 / (lam + JACOB_K)))


def compute(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor,
            names: Iterable[str] = PROXIES, *, seed: int = 0, reset_bn: bool = True
            ) -> dict[str, float]:
    """Zero-cost proxies of ``model`` on one batch → ``{name: score}`` (names in canonical order).

    ``batch_x``: N x C x H x W float images (N >= 2 for naswot/jacob_cov), ``batch_y``: N
    int64 labels. ``seed`` fixes any randomness inside the forward pass. Deterministic for
    the same weights, batch, seed and thread count; the caller's model and RNG are unchanged.
    """
    wanted = check_names(names)
    if batch_x.ndim < 2 or batch_x.shape[0] != batch_y.shape[0]:
        raise ValueError(f"batch_x {tuple(batch_x.shape)} and batch_y {tuple(batch_y.shape)}: "
                         "expected N images and N labels")
    device = next(model.parameters()).device
    x = batch_x.detach().to(device=device, dtype=next(model.parameters()).dtype)
    y = batch_y.detach().to(device)
    # NHWC runs convolutions 1.6x faster on CPU (measured for proxies and training alike)
    cl = device.type == "cpu" and x.ndim == 4
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    devices = [device.index or 0] if device.type == "cuda" else []
    out: dict[str, float] = {}
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        with torch.enable_grad():
            loss_names = set(wanted) & _LOSS_PROXIES
            if loss_names:
                out.update(_loss_pass(_working_copy(model, reset_bn, cl), x, y, loss_names))
            if "jacob_cov" in wanted:
                out["jacob_cov"] = jacob_cov(_working_copy(model, reset_bn, cl), x)
            if "synflow" in wanted:
                out["synflow"] = synflow(model, tuple(x.shape[1:]))
    return {n: out[n] for n in wanted}
