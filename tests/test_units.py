"""Budgets and units: parsing, formatting, limits."""

from __future__ import annotations

import pytest

from nasl.common.errors import NaslError
from nasl.common.units import Budgets, format_budget, format_cost, parse_budget, parse_budgets, size_mb


@pytest.mark.parametrize("text, metric, value", [
    ("40MFLOPs", "macs", 40e6),
    ("40M", "macs", 40e6),
    ("40MMACs", "macs", 40e6),
    ("0.04GFLOPs", "macs", 40e6),
    ("140 MFLOPs", "macs", 140e6),
    ("40mflops", "macs", 40e6),
    ("500k", "macs", 5e5),
    ("1e6", "macs", 1e6),
    ("macs<=40M", "macs", 40e6),
    ("flops<=40M", "macs", 40e6),
    ("1.5Mparams", "params", 1.5e6),
    ("800Kparams", "params", 8e5),
    ("params<=1.5M", "params", 1.5e6),
    ("params<=1500000", "params", 1.5e6),
    ("5ms", "latency_ms", 5.0),
    ("300us", "latency_ms", 0.3),
    ("300µs", "latency_ms", 0.3),
    ("0.1s", "latency_ms", 100.0),
    ("latency_ms<=5", "latency_ms", 5.0),
    ("latency<=300us", "latency_ms", 0.3),
    ("2MB", "size_mb", 2.0),
    ("512KB", "size_mb", 0.5),
    ("1GB", "size_mb", 1024.0),
    ("size_mb<=4.8", "size_mb", 4.8),
])
def test_parse_budget_table(text: str, metric: str, value: float) -> None:
    m, v = parse_budget(text)
    assert m == metric
    assert v == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text, needle", [
    ("40MFLOPz", "unknown unit 'MFLOPz'; expected e.g. 40MFLOPs, 1.5Mparams, 5ms, 2MB or "
                 "macs<=40M"),
    ("-5ms", "positive"),
    ("0", "positive"),
    ("0MFLOPs", "positive"),
    ("1e999", "positive"),
    ("", "cannot read a number"),
    ("fast", "cannot read a number"),
    ("macs<=5ms", "does not measure macs"),
    ("speed<=5", "unknown metric 'speed'"),
])
def test_parse_budget_errors(text: str, needle: str) -> None:
    with pytest.raises(NaslError) as e:
        parse_budget(text)
    assert needle in str(e.value)
    assert str(e.value).startswith(f"--budget {text!r}")
    assert "\n" not in str(e.value)


def test_parse_budgets_combine_and_reject_repeats() -> None:
    assert parse_budgets(["40MFLOPs", "5ms", "2MB"]) == {
        "macs": 40e6, "latency_ms": 5.0, "size_mb": 2.0}
    with pytest.raises(NaslError, match="macs is limited twice"):
        parse_budgets(["40M", "macs<=50M"])


@pytest.mark.parametrize("metric, value", [
    ("macs", 40e6), ("macs", 37_589_856), ("macs", 1234.5), ("params", 1.5e6),
    ("params", 7), ("latency_ms", 0.3), ("size_mb", 0.48828125), ("macs", 1e12),
])
def test_format_budget_round_trips(metric: str, value: float) -> None:
    text = format_budget(metric, value)
    assert parse_budget(text) == (metric, value)


def test_format_cost_and_size() -> None:
    assert format_cost("macs", 37_589_856) == "37.59M MACs"
    assert format_cost("params", 1_235_496) == "1.24M params"
    assert size_mb(1_248_424) == pytest.approx(4.762, abs=1e-3)  # SqueezeNet's "4.8 MB"


def test_budgets_mapping() -> None:
    b = Budgets.parse(["5ms", "40MFLOPs"])
    assert list(b) == ["macs", "latency_ms"]  # canonical order
    assert b["macs"] == 40e6 and len(b) == 2
    assert str(b) == "macs<=40M, latency_ms<=5ms"
    assert b.analytic() == {"macs": 40e6}
    assert b.violations({"macs": 50e6, "latency_ms": 1.0}) == {"macs": (50e6, 40e6)}
    assert b.fits({"macs": 30e6}) and not b.fits({"macs": 41e6})
    assert b.merged({"macs": 10e6})["macs"] == 10e6
    assert b.to_texts() == {"macs": "40M", "latency_ms": "5ms"}
    assert b == Budgets({"macs": 40e6, "latency_ms": 5.0})
    with pytest.raises(ValueError):
        Budgets({"flops": 3})
    with pytest.raises(ValueError):
        Budgets({"macs": 0})
