"""Property-based tests (hypothesis): generated run names, budgets, seeds, YAML values, CLI
values and small data arrays either work or end as docs/promises.md promises: ``NaslError`` (one
line, exit 2), never another exception, never a path outside the runs folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nasl.common import guards  # noqa: E402
from nasl.common.errors import NaslError  # noqa: E402

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = settings(max_examples=12, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def one_line(e: NaslError) -> None:
    text = str(e)
    assert text and "\n" not in text and "Traceback" not in text


@FAST
@given(st.one_of(st.text(max_size=40), st.sampled_from(["..", ".", "/x", "a/../b", "a\n", "ok-1"])))
def test_run_names_stay_inside_the_runs_folder(name):
    runs = Path("/tmp/nasl-prop-runs")
    try:
        ok = guards.check_run_name(name)
    except NaslError as e:
        one_line(e)
        return
    target = (runs / ok).resolve()
    assert target.parent == runs.resolve() and target.name == ok


@FAST
@given(st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=5)))
def test_seeds_are_in_numpy_range_or_refused(seed):
    try:
        s = guards.check_seed(seed)
    except NaslError as e:
        one_line(e)
        return
    np.random.seed(s)  # never raises for an accepted seed


@FAST
@given(st.one_of(
    st.text(max_size=16),
    st.builds(lambda n, u: f"{n}{u}", st.floats(allow_nan=True, allow_infinity=True),
              st.sampled_from(["", "M", "MFLOPs", "ms", "us", "MB", "Mparams", "G", "xx"])),
))
@example("1.7976931345000002e+308")  # CI, stop 16: "1.797693135e+299G" overflowed to inf
@example("1.7976931345000002e+308ms")
def test_budgets_parse_or_are_refused(text):
    from nasl.common.units import format_budget, parse_budget

    try:
        metric, value = parse_budget(text)
    except NaslError as e:
        one_line(e)
        return
    assert math.isfinite(value) and value > 0
    assert parse_budget(format_budget(metric, value))[0] == metric


@SLOW
@given(resolution=st.one_of(st.integers(-5, 5000), st.floats(), st.text(max_size=4)),
       seed=st.one_of(st.integers(-2, 2**70), st.text(max_size=3)),
       trials=st.one_of(st.integers(-3, 10**6), st.none()))
def test_yaml_values_load_or_are_refused(resolution, seed, trials):
    import yaml

    from nasl.space import loads_space

    doc = {"name": "p", "family": "shufflenet", "proxy": {"resolution": resolution},
           "search": {"seed": seed, **({"trials": trials} if trials is not None else {})},
           "params": {"groups": {"choices": [1, 3]}}}
    try:
        space = loads_space(yaml.safe_dump(doc))
    except NaslError as e:
        one_line(e)
        return
    assert 4 <= space.proxy.resolution <= 1024
    guards.check_seed(space.search.seed, "search.seed")


@SLOW
@given(n=st.integers(-3, 30), seed=st.integers(-5, 2**34))
def test_space_sample_cli_values(capsys, n, seed):
    from nasl.cli import main

    rc = main(["space", "sample", "shufflenet", "-n", str(n), "--seed", str(seed), "--json"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc == 2:
        assert len(err.strip().splitlines()) == 1
    else:
        assert rc == 0 and n >= 1 and 0 <= seed < 2**32


@SLOW
@given(h=st.integers(0, 6), w=st.integers(0, 6), labels=st.lists(st.integers(-2, 2**40), min_size=4,
                                                               max_size=12),
       dtype=st.sampled_from(["uint8", "float32", "complex64", "int64"]))
def test_small_data_arrays_load_or_are_refused(tmp_path_factory, h, w, labels, dtype):
    from nasl.data import load_dataset

    n = len(labels)
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    y = np.asarray(labels, np.int64)
    np.savez(path, x_train=np.ones((n, h, w), dtype), y_train=y,
             x_test=np.ones((2, h, w), dtype), y_test=y[:2])
    try:
        d = load_dataset(f"npz:{path}", resolution=8, seed=0, val_fraction=0.25)
    except NaslError as e:
        one_line(e)
        return
    assert d.num_classes <= guards.MAX_CLASSES and d.train_x.shape[-1] == 8
