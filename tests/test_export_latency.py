"""nasl export re-times the target in the search's runtime; the card shows both latencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasl.export.card import render
from nasl.export.pipeline import verify_latency
from nasl.families import preset


@pytest.fixture(autouse=True)
def _lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path / "locks"))


def test_verify_latency_uses_the_search_runtime() -> None:
    arch = preset("shufflenet_v1", input_size=32, num_classes=10)
    searched = {"median_ms": 2.0, "device": "cpu", "threads": 1, "batch_size": 1, "dtype": "fp32",
                "runtime": "onnxruntime"}
    ex = verify_latency(arch, searched, repeats=3)
    assert ex["runtime"] == "onnxruntime" and ex["device"] == "cpu" and ex["threads"] == 1
    assert ex["ratio"] == pytest.approx(ex["median_ms"] / 2.0)
    bad = verify_latency(arch, {**searched, "dtype": "bf16"}, repeats=1)
    assert "error" in bad and "bf16" in bad["error"]


def test_card_shows_search_vs_export_time() -> None:
    lat = {"median_ms": 2.0, "p10_ms": 1.9, "p90_ms": 2.2, "device": "cpu", "runtime": "onnxruntime",
           "threads": 1, "export": {"median_ms": 2.5, "p10_ms": 2.4, "p90_ms": 2.7, "device": "cpu",
                                    "runtime": "onnxruntime", "threads": 1, "ratio": 1.25,
                                    "cpu_ratio": 0.5}}
    model = {"input_shape": [1, 3, 32, 32], "num_classes": 10, "macs": 1, "params": 1, "size_mb": 0.1}
    card = render({"model": model, "latency": lat})
    assert "| search | 2.000 | 1.900-2.200 | onnxruntime | cpu | 1 |" in card
    assert "| export | 2.500 | 2.400-2.700 | onnxruntime | cpu | 1 |" in card
    assert "Export / search: 1.25x" in card and "runtime onnxruntime" in card
    card = render({"model": model, "latency": {**lat, "export": {"runtime": "onnxruntime",
                                                                  "device": "cuda:0", "error": "no GPU"}}})
    assert "not measured (no GPU)" in card
