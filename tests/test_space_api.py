"""SearchSpace API: sampling, conditionals, round trip, overrides, describe, minimum cost."""

from __future__ import annotations

import json
import warnings

import optuna
import pytest

from nasl.common.errors import NaslError
from nasl.common.units import Budgets
from nasl.space import (
    describe,
    load_space,
    loads_space,
    min_cost,
    sample_configs,
    sample_params,
    space_size,
    unsatisfiable_budget_message,
)
from nasl.space.describe import _enumerate

SMALL = """\
name: small
family: shufflenet
description: a tiny test space
target: {input_size: 224}
proxy: {resolution: 32, epochs: 2}
budget: {macs: 40M, latency_ms: 5ms}
params:
  groups: {choices: [3, 8]}
  shuffle: {choices: [true, false], when: {groups: 8}}
  width_mult: {choices: [0.25, 0.5]}
  resolution: {choices: [128, 224]}
  stage_repeats: "4,8,4"
baselines:
  half_g3: {groups: 3, width_mult: 0.5, resolution: 224}
"""


@pytest.fixture(scope="module")
def small():
    return loads_space(SMALL, "small.yaml")


def test_typed_sections(small) -> None:
    assert small.name == "small" and small.family == "shufflenet"
    assert small.target.input_size == 224 and small.target.num_classes == 1000
    assert small.proxy.dataset == "fmnist-mini"  # the shipped default (issue 11)
    assert small.proxy.epochs == 2
    assert small.proxy.train_kwargs()["batch_size"] == 64
    assert [(o.metric, o.direction) for o in small.objectives] == [
        ("accuracy", "max"), ("macs", "min"), ("latency_ms", "min")]
    assert small.budget == Budgets({"macs": 40e6, "latency_ms": 5.0})
    assert small.fixed == {"stage_repeats": [4, 8, 4]}
    assert small.search.sampler == "tpe" and small.search.trials == 20
    assert small.baselines == {"half_g3": {"groups": 3, "width_mult": 0.5, "resolution": 224,
                                           "stage_repeats": [4, 8, 4]}}


def test_conditional_sampling_and_size(small) -> None:
    assert space_size(small) == (1 + 2) * 2 * 2  # shuffle only with g=8
    every = list(_enumerate(small))
    assert len(every) == space_size(small)
    for p in sample_params(small, 30, seed=0):
        assert ("shuffle" in p) == (p["groups"] == 8)
        assert p["stage_repeats"] == [4, 8, 4]


def test_resolution_in_pixels(small) -> None:
    p = {"groups": 3, "width_mult": 0.5, "resolution": 128}
    assert small.to_arch(p).input_size == 128
    assert small.to_arch(p, target=False).input_size == round(32 * 128 / 224)
    proxy = small.proxy_arch(p, num_classes=10, in_channels=1)
    assert (proxy.input_size, proxy.num_classes, proxy.in_channels) == (18, 10, 1)


def test_to_arch_rejects_params_outside(small) -> None:
    with pytest.raises(NaslError, match=r"params.groups: 4 — outside the space"):
        small.to_arch({"groups": 4})
    with pytest.raises(NaslError, match="not used here: active only when groups = 8"):
        small.to_arch({"groups": 3, "shuffle": False})
    with pytest.raises(NaslError, match="did you mean 'groups'"):
        small.to_arch({"grups": 3})


def test_optuna_enqueue_and_decode() -> None:
    space = load_space("shufflenet")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for params in space.baselines.values():
        study.enqueue_trial(space.encode(params))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an out-of-range enqueue would warn
        got = [space.sample(study.ask()) for _ in space.baselines]
    assert got == list(space.baselines.values())
    trial = study.ask()
    params = space.sample(trial)
    assert space.decode(trial.params) == params


def test_list_choices_are_strings_for_optuna() -> None:
    space = load_space("mobilenet")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    params = space.sample(trial)
    assert isinstance(params["downsample_at"], list)
    assert isinstance(trial.params["downsample_at"], str)
    assert space.encode(params)["downsample_at"] == ",".join(map(str, params["downsample_at"]))


@pytest.mark.parametrize("name", ["shufflenet", "hybrid", "squeezenet"])
def test_to_yaml_round_trip(name: str) -> None:
    space = load_space(name)
    again = loads_space(space.to_yaml(), "again.yaml")
    assert again == space
    assert again.to_yaml() == space.to_yaml()


def test_overrides_and_budget(small) -> None:
    s2 = small.with_overrides({"groups": "8", "proxy.epochs": "3", "target.input_size": 160})
    assert s2.fixed["groups"] == 8 and s2.proxy.epochs == 3 and s2.target.input_size == 160
    assert "half_g3" not in s2.baselines  # a g=3 baseline is outside the restricted space
    s3 = s2.with_budget(Budgets.parse(["30MFLOPs", "1.5Mparams"]))
    assert s3.budget == {"macs": 30e6, "params": 1.5e6, "latency_ms": 5.0}
    assert loads_space(s3.to_yaml()) == s3
    with pytest.raises(NaslError, match="did you mean 'groups'"):
        small.with_overrides({"grups": 3})
    with pytest.raises(NaslError, match="proxy.epoch: unknown key; did you mean 'epochs'"):
        small.with_overrides({"proxy.epoch": 3})
    with pytest.raises(NaslError, match="groups must be an integer >= 1"):
        small.with_overrides({"groups": 0})
    full = load_space("shufflenet").with_overrides({"stage_repeats": "4,8,4"})
    assert full.fixed == {"stage_repeats[0]": 4, "stage_repeats[1]": 8, "stage_repeats[2]": 4}


def test_sample_configs_json(small) -> None:
    rows = sample_configs(small, 5, seed=0)
    assert rows == sample_configs(small, 5, seed=0)
    assert [r["number"] for r in rows] == list(range(5))
    for r in rows:
        cfg = small.to_arch(r["params"])
        assert r["macs"] == cfg.macs() and r["n_params"] == cfg.params()
        assert r["arch_id"] == cfg.id and r["feasible"] == (r["macs"] <= 40e6)
    json.dumps(rows)


def test_describe(small) -> None:
    s = describe(small, {"macs": 20e6}, n=50, seed=0)
    assert [r.name for r in s.rows] == ["groups", "shuffle", "width_mult", "resolution",
                                        "stage_repeats"]
    assert s.rows[1].when == "groups = 8" and s.rows[4].domain == "fixed: [4, 8, 4]"
    assert s.size == 12 and s.size_text == "12"
    assert s.macs.min <= s.macs.median <= s.macs.max
    assert s.budget == {"macs": 20e6, "latency_ms": 5.0}
    assert 0 < s.feasible_fraction < 1
    (b,) = s.baselines
    assert b.name == "half_g3" and b.macs == 37_589_856 and b.fits is False
    text = "\n".join(s.lines())
    assert "size of the space: 12" in text and "half_g3" in text and "over budget" in text
    assert s.min_costs["macs"] == min(small.to_arch(p).macs() for p in _enumerate(small))
    assert describe(small, n=10).feasible_fraction is not None  # the space's own 40M budget
    assert describe(loads_space(SMALL.replace("macs: 40M, ", "")), n=5).feasible_fraction is None


def test_min_cost_and_unsatisfiable() -> None:
    space = load_space("shufflenet")
    smallest = min_cost(space, "macs")
    sample_min = min(space.to_arch(p).macs() for p in sample_params(space, 200, seed=0))
    assert smallest <= sample_min
    corner = {"groups": 8, "shuffle": True, "width_mult": 0.25, "resolution": 96,
              "stage_repeats[0]": 2, "stage_repeats[1]": 4, "stage_repeats[2]": 2}
    assert smallest <= space.to_arch(corner).macs()
    msg = unsatisfiable_budget_message(space, {"macs": 1e3})
    assert msg is not None and msg.startswith("the smallest configuration in shufflenet.yaml")
    assert "macs<=1k" in msg
    assert unsatisfiable_budget_message(space, {"macs": 40e6}) is None
    assert unsatisfiable_budget_message(space, {"latency_ms": 0.001}) is None  # not analytic
    with pytest.raises(ValueError):
        min_cost(space, "latency_ms")


def test_space_yaml_forms() -> None:
    text = """\
family: mobilenet
objectives: [accuracy, {metric: params, direction: min}]
params:
  width_mult: {low: 0.25, high: 1.0}
  resolution: {value: 160}
  stage_repeats[3]: {choices: [2, 4, 6], default: 4}
  downsample_at: {choices: ["1,2,3,4", [0, 1, 2, 3]]}
baselines:
  b: {width_mult: 0.5}
"""
    s = loads_space(text, "forms.yaml", default_name="forms")
    assert s.name == "forms"
    assert [(o.metric, o.direction) for o in s.objectives] == [("accuracy", "max"),
                                                              ("params", "min")]
    assert space_size(s) is None  # continuous width
    assert s.baselines["b"] == {"width_mult": 0.5, "resolution": 160, "stage_repeats[3]": 4,
                                "downsample_at": [1, 2, 3, 4]}
    cfg = s.to_arch(s.baselines["b"])
    assert cfg.input_size == 160 and len(cfg.stages[3].blocks) == 4
    assert loads_space(s.to_yaml()) == s
