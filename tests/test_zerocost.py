"""Zero-cost proxies: hand-computed values on tiny networks, correlations, the pre-screen
switch, and ``nasl proxies`` on a run."""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasl.common.errors import NaslError
from nasl.zerocost import (
    add_parser,
    compute,
    correlate,
    decide,
    decide_auto,
    load_trained,
    pick,
    run_proxies,
    sample_feasible,
    score_design,
)
from nasl.zerocost.measures import JACOB_K
from nasl.zerocost.stats import kendall_rows, spearman_rows


def _linear(w: list[list[float]]) -> nn.Linear:
    t = torch.tensor(w, dtype=torch.float32)
    lin = nn.Linear(t.shape[1], t.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(t)
    return lin


# ----------------------------------------------------------------------------- proxies
def test_synflow_by_hand_bypasses_bn() -> None:
    # |W1| = [[1,2],[3,.5]], |W2| = [[1,2]]; input ones: h = [3, 3.5], R = 1*3 + 2*3.5 = 10.
    # layer 2: sum |W2| * h = 10; layer 1: sum_ij |W1_ij| * |W2_i| = 3*1 + 3.5*2 = 10.
    bn = nn.BatchNorm1d(2)
    with torch.no_grad():  # a BN that would change the flow if it were not bypassed
        bn.weight.fill_(3.0)
        bn.running_mean.fill_(1.0)
    net = nn.Sequential(_linear([[1, -2], [3, 0.5]]), bn, nn.ReLU(), _linear([[-1, 2]]))
    x = torch.randn(4, 2)
    assert compute(net, x, torch.zeros(4, dtype=torch.long), ["synflow"])["synflow"] == \
        pytest.approx(20.0, rel=1e-12)


def test_grad_norm_and_snip_by_hand() -> None:
    w1 = np.array([[1.0, -2.0], [0.5, 1.5], [-1.0, 0.25]])
    w2 = np.array([[0.3, -0.7, 1.1], [-0.4, 0.9, 0.2]])
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -1.2], [2.0, -0.1]])
    y = np.array([0, 1, 1, 0])
    # by hand: forward, softmax cross-entropy (mean over 4), backward
    pre = x @ w1.T
    h = np.maximum(pre, 0)
    z = h @ w2.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(2)[y]) / len(x)
    dw2 = dz.T @ h
    dw1 = ((dz @ w2) * (pre > 0)).T @ x
    grad_norm = np.linalg.norm(dw1) + np.linalg.norm(dw2)
    snip = np.abs(w1 * dw1).sum() + np.abs(w2 * dw2).sum()

    net = nn.Sequential(_linear(w1.tolist()), nn.ReLU(), _linear(w2.tolist()))
    got = compute(net, torch.tensor(x, dtype=torch.float32), torch.tensor(y),
                  ["grad_norm", "snip"])
    assert got["grad_norm"] == pytest.approx(grad_norm, rel=1e-5)
    assert got["snip"] == pytest.approx(snip, rel=1e-5)


def test_naswot_by_hand() -> None:
    # W1 = I: ReLU codes are [1,0], [0,1], [1,1]; K_ij counts agreeing bits:
    # K = [[2,0,1],[0,2,1],[1,1,2]], det K = 2*3 - 0 + 1*(0-2) = 4.
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    y = torch.zeros(3, dtype=torch.long)
    one = nn.Sequential(_linear([[1, 0], [0, 1]]), nn.ReLU(), _linear([[1, 1], [1, -1]]))
    assert compute(one, x, y, ["naswot"])["naswot"] == pytest.approx(math.log(4.0), rel=1e-9)
    # a second ReLU with the same codes doubles K: det(2K) = 8 * 4 (3 x 3)
    two = nn.Sequential(_linear([[1, 0], [0, 1]]), nn.ReLU(), _linear([[1, 0], [0, 1]]),
                        nn.ReLU(), _linear([[1, 1], [1, -1]]))
    assert compute(two, x, y, ["naswot"])["naswot"] == pytest.approx(math.log(32.0), rel=1e-9)


def test_jacob_cov_by_hand() -> None:
    # d(sum out)/dx per image = W2 * code: [1,0], [0,2], [1,2]; their correlation matrix is
    # [[1,-1,-1],[-1,1,1],[-1,1,1]] with eigenvalues 3, 0, 0.
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    net = nn.Sequential(_linear([[1, 0], [0, 1]]), nn.ReLU(), _linear([[1, 2]]))
    k = JACOB_K
    want = -(math.log(3 + k) + 1 / (3 + k) + 2 * (math.log(k) + 1 / k))
    got = compute(net, x, torch.zeros(3, dtype=torch.long), ["jacob_cov"])["jacob_cov"]
    assert got == pytest.approx(want, rel=1e-6)


def _small_shufflenet(tiny_space: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    from nasl.network.builder import build_model
    from nasl.space import load_space

    space = load_space(tiny_space)
    arch = space.proxy_arch(space.baselines["small_g3"], 10, 3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, arch.input_size, arch.input_size, generator=g)
    return build_model(arch, seed=0), x, torch.arange(16) % 10


def test_compute_leaves_model_and_rng_alone_and_repeats(tiny_space: Path) -> None:
    model, x, y = _small_shufflenet(tiny_space)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    first = compute(model, x, y, ["synflow", "naswot", "grad_norm", "snip", "jacob_cov"])
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert compute(model, x, y, ["synflow", "naswot", "grad_norm", "snip", "jacob_cov"]) == first
    assert all(math.isfinite(v) for v in first.values())
    assert list(first) == ["synflow", "naswot", "grad_norm", "snip", "jacob_cov"]


def test_reset_bn_makes_zero_init_branches_visible(tiny_space: Path) -> None:
    model, x, y = _small_shufflenet(tiny_space)
    kept = compute(model, x, y, ["snip"], reset_bn=False)["snip"]
    reset = compute(model, x, y, ["snip"])["snip"]
    assert reset > kept  # zero γ blocks the gradient of every residual branch's weights


def test_unknown_proxy_is_a_user_error(tiny_space: Path) -> None:
    model, x, y = _small_shufflenet(tiny_space)
    with pytest.raises(NaslError, match="proxy 'zen'.*synflow"):
        compute(model, x, y, ["zen"])


def test_proxies_take_well_under_a_second_of_cpu() -> None:
    from nasl.network.builder import build_model
    from nasl.space import load_space

    space = load_space("mobilenet")
    arch = space.proxy_arch(space.baselines["mobilenet_0.5_224"], 10, 3)
    model = build_model(arch, seed=0)
    x, y = torch.randn(64, 3, arch.input_size, arch.input_size), torch.arange(64) % 10
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU time of one thread: OpenMP spin-waits inflate it otherwise
    try:
        compute(model, x, y)  # warm-up
        c0 = time.process_time()
        compute(model, x, y)
        cpu = time.process_time() - c0
    finally:
        torch.set_num_threads(threads)
    assert cpu < 1.0, f"{cpu:.2f} s CPU"


# ----------------------------------------------------------------------------- correlations
def test_correlations_by_hand() -> None:
    # x = 1..4, y ranks 1,3,2,4: Σd² = 2, ρ = 1 - 6*2/(4*15) = 0.8; 5 concordant, 1 discordant
    c = correlate({"m": [1, 2, 3, 4]}, [0.1, 0.3, 0.2, 0.4])["m"]
    assert c.spearman == pytest.approx(0.8)
    assert c.kendall == pytest.approx(4 / 6)
    assert spearman_rows(np.array([[1, 2, 3, 4.0]]), np.array([[1, 3, 2, 4.0]]))[0] == \
        pytest.approx(0.8)
    assert kendall_rows(np.array([[1, 2, 3, 4.0]]), np.array([[1, 3, 2, 4.0]]))[0] == \
        pytest.approx(4 / 6)
    lo, hi = c.spearman_ci
    assert -1 <= lo <= 0.8 <= hi <= 1


def test_correlations_monotone_reversed_constant_and_nan() -> None:
    acc = list(np.linspace(0.1, 0.9, 10))
    got = correlate({"up": list(range(10)), "down": list(range(10, 0, -1)),
                     "flat": [1.0] * 10, "gaps": [float("nan"), 1, 2, 3, 4, 5, 6, 7, 8, 9],
                     "inf": [-math.inf, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, acc)
    assert got["up"].spearman == pytest.approx(1) and got["up"].spearman_ci == pytest.approx((1, 1))
    assert got["down"].kendall == pytest.approx(-1)
    assert got["down"].kendall_ci == pytest.approx((-1, -1))
    assert math.isnan(got["flat"].spearman) and got["flat"].to_dict()["spearman"] is None
    assert got["gaps"].n == 9 and got["gaps"].spearman == pytest.approx(1)
    assert got["inf"].n == 10 and got["inf"].spearman == pytest.approx(1)


def test_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(0)
    acc = rng.normal(size=15)
    s = {"a": list(acc + rng.normal(size=15))}
    assert correlate(s, acc, seed=3)["a"].spearman_ci == correlate(s, acc, seed=3)["a"].spearman_ci
    assert correlate(s, acc, seed=3)["a"].spearman_ci != correlate(s, acc, seed=4)["a"].spearman_ci


# ----------------------------------------------------------------------------- pre-screen switch
ACC = list(np.linspace(0.5, 0.9, 12))
PROXY_GOOD = [1, 2, 4, 3, 5, 7, 6, 8, 10, 9, 12, 11]  # ρ = 0.97


def test_switch_turns_on_when_proxy_clearly_beats_costs() -> None:
    params = [4, 1, 6, 2, 3, 9, 5, 12, 7, 8, 11, 10]  # ρ = 0.76
    d = decide({"synflow": PROXY_GOOD, "params": params, "macs": params}, ACC, "synflow", 0.1, 10)
    assert d.on and d.reason.startswith("on:")
    assert d.delta == pytest.approx(0.21, abs=0.01) and d.p_better >= 0.9
    assert d.to_dict()["correlations"]["params"]["spearman"] == pytest.approx(0.76, abs=0.01)
    json.dumps(d.to_dict())


def test_switch_stays_off_when_proxy_only_ties_costs() -> None:
    d = decide({"synflow": PROXY_GOOD, "params": PROXY_GOOD, "macs": [1] * 12}, ACC, "synflow")
    assert not d.on and "needs a lead of 0.10" in d.reason


def test_switch_uses_cost_magnitude() -> None:
    # params predict perfectly in reverse (ρ = -1): that is as good as +1 for a searcher
    d = decide({"synflow": PROXY_GOOD, "params": list(range(12, 0, -1)),
                "macs": list(range(12, 0, -1))}, ACC, "synflow")
    assert not d.on and d.delta < 0


def test_switch_stays_off_when_lead_is_noise() -> None:
    proxy = [3, 1, 6, 2, 9, 4, 5, 12, 7, 8, 11, 10]  # ρ = 0.76
    params = [5, 1, 3, 9, 2, 4, 12, 6, 7, 11, 8, 10]  # ρ = 0.64
    d = decide({"synflow": proxy, "params": params, "macs": params}, ACC, "synflow")
    assert not d.on and d.delta >= 0.1 and "bootstrap resamples (needs 90%)" in d.reason


def test_switch_waits_for_enough_trials() -> None:
    d = decide({"synflow": [1, 2, 3, 4, 5], "params": [1] * 5, "macs": [5, 1, 4, 2, 3]},
               ACC[:5], "synflow", min_trials=10)
    assert not d.on and "5 completed trials" in d.reason
    assert decide({"synflow": [1, 2, 3, 4, 5], "params": [1] * 5, "macs": [5, 1, 4, 2, 3]},
                  ACC[:5], "synflow", min_trials=5, confidence=0.5).on


def test_pick() -> None:
    nan = float("nan")
    assert pick([1.0, 3.0, 3.0, 2.0]) == 1
    assert pick([nan, -1.0]) == 1
    assert pick([nan, nan]) == 0
    assert pick([-math.inf, nan, 0.0]) == 2


def test_sample_feasible_and_score_design(tiny_space: Path) -> None:
    from nasl.data import load_dataset
    from nasl.space import load_space

    space = load_space(tiny_space)
    cands = sample_feasible(space, 3, seed=0, fits=lambda p: p["width_mult"] == 0.25)
    assert len(cands) == 3 and all(p["width_mult"] == 0.25 for p in cands)
    assert sample_feasible(space, 3, seed=0, fits=lambda p: p["width_mult"] == 0.25) == cands

    def data_for(res: int):
        return load_dataset("digits", resolution=res, seed=0, subset=200, val_subset=50)

    s = score_design(space, cands[0], data_for, ["synflow", "naswot"])
    assert s == score_design(space, cands[0], data_for, ["synflow", "naswot"])
    assert s["synflow"] > 0 and math.isfinite(s["naswot"])


# ----------------------------------------------------------------------------- nasl proxies
def _fake_run(tmp_path: Path, tiny_space: Path, rows: list[dict[str, str]]) -> Path:
    from nasl.space import load_space

    space = load_space(tiny_space)
    run = tmp_path / "run"
    run.mkdir()
    (run / "space.yaml").write_text(space.to_yaml())
    names = list(space.order)
    (run / "env.json").write_text(json.dumps({"data": "digits", "seed": 0, "choice_names": names}))
    cols = ["number", "state", "baseline", *names, "macs", "params", "accuracy", "feasible"]
    with (run / "trials.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({"number": i, "baseline": "", "stage_repeats[0]": 2, "stage_repeats[2]": 2,
                        **r})
    return run


DESIGN = {"groups": "3", "shuffle": "True", "stage_repeats[1]": "2", "macs": "1000",
          "params": "100", "feasible": "True", "state": "COMPLETE"}


def _rows() -> list[dict[str, str]]:
    return [{**DESIGN, "width_mult": "0.25", "accuracy": "0.5"},
            {**DESIGN, "width_mult": "0.5", "accuracy": "0.7", "macs": "3000", "params": "300",
             "shuffle": "False", "groups": "1"},
            {**DESIGN, "width_mult": "0.5", "accuracy": "0.6", "macs": "2000", "params": "50",
             "stage_repeats[1]": "4"},
            {**DESIGN, "width_mult": "0.25", "accuracy": "", "state": "FAIL"},
            {**DESIGN, "width_mult": "0.5", "accuracy": "0.9", "feasible": "False"}]


def test_load_trained_reads_complete_feasible_rows(tmp_path: Path, tiny_space: Path) -> None:
    _, env, trained = load_trained(_fake_run(tmp_path, tiny_space, _rows()))
    assert [t.number for t in trained] == [0, 1, 2]
    assert trained[1].params["shuffle"] is False and trained[1].params["width_mult"] == 0.5
    assert trained[2].params["stage_repeats[1]"] == 4 and trained[2].accuracy == 0.6


def test_proxies_command_json(tmp_path: Path, tiny_space: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    run = _fake_run(tmp_path, tiny_space, _rows())
    parser = argparse.ArgumentParser(prog="nasl")
    add_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["proxies", str(run), "--json", "--batch", "16", "--bootstrap", "200",
                              "--proxies", "synflow,snip"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 3 and [c["metric"] for c in out["correlations"]] == \
        ["synflow", "snip", "params", "macs"]
    assert out["correlations"][2]["spearman"] == pytest.approx(0.5)  # params ranks 2,3,1 vs acc 1,3,2
    assert not out["decisions"]["synflow"]["on"]
    assert all(d["synflow"] > 0 for d in out["designs"])
    args = parser.parse_args(["proxies", str(run), "--batch", "16", "--bootstrap", "100",
                              "--proxies", "synflow"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "Spearman" in text and "pre-screen (auto): off: 3 completed trials" in text
    assert "(auto, best of synflow at 90% confidence)" in text


def test_proxies_errors(tmp_path: Path, tiny_space: Path) -> None:
    with pytest.raises(NaslError, match="no run folder"):
        run_proxies(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NaslError, match="trials.csv missing"):
        run_proxies(tmp_path / "empty")
    run = _fake_run(tmp_path, tiny_space, _rows()[:2] + _rows()[3:])
    with pytest.raises(NaslError, match="2 completed feasible trials.*at least 3"):
        run_proxies(run)


@pytest.mark.slow
def test_proxies_on_a_real_run(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "nasl.cli", "search", "shufflenet", "--trials", "4",
                    "--epochs", "1", "--no-baselines", "--confirm-seeds", "0", "--runs-dir",
                    str(tmp_path), "--name", "r", "--quiet"], check=True, capture_output=True,
                    timeout=600)
    out = run_proxies(tmp_path / "r", n_boot=200)
    assert out["n"] == 4
    assert {c["metric"] for c in out["correlations"]} == {"synflow", "naswot", "grad_norm", "snip",
                                                          "params", "macs"}
    assert all(c["spearman"] is None or -1 <= c["spearman"] <= 1 for c in out["correlations"])
    assert out["decisions"]["synflow"]["reason"].startswith("off: 4 completed trials")


def test_auto_takes_the_proxy_that_earns_it_with_a_corrected_confidence() -> None:
    """Which proxy works depends on the space: auto tries each, Bonferroni-corrected."""
    params = [5, 3, 9, 1, 12, 7, 2, 10, 4, 11, 6, 8]  # unrelated to ACC
    scores = {"synflow": [-a for a in PROXY_GOOD], "naswot": PROXY_GOOD,
              "params": params, "macs": params}
    d = decide_auto(scores, ACC, ["synflow", "naswot"])
    assert d.on and d.proxy == "naswot" and d.confidence == pytest.approx(0.95)
    assert "auto, best of synflow, naswot at 95% confidence" in d.reason
    d2 = decide_auto(scores, ACC, ["naswot", "synflow"])  # the order does not matter
    assert d2.on and d2.proxy == "naswot" and d2.delta == d.delta
    off = decide_auto({**scores, "naswot": params}, ACC, ["synflow", "naswot"])
    assert not off.on and off.reason.startswith("off:") and "(auto, best of" in off.reason
    with pytest.raises(ValueError, match="no proxies"):
        decide_auto(scores, ACC, [])
