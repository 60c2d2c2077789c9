"""bench/gpu_check.py on the CPU: table generation, the no-CUDA exit, the search command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path / "locks"))


def test_no_cuda_exits_cleanly(gpu_check: ModuleType, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "x.md")]) == 0
    assert "no CUDA device visible" in capsys.readouterr().out
    assert not (tmp_path / "x.md").exists()


@pytest.mark.slow
def test_tiny_cpu_run_writes_the_table(gpu_check: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.md"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--no-search", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# GPU check on ")
    for name in gpu_check.PRESETS:
        assert f"| {name} | 64 | fp32 |" in text
    assert "Skipped (--no-search)" in text
    assert "Spearman " in text and text.count("| 4 designs") == 0
    assert len([line for line in text.splitlines() if line.startswith("| ") and "MMACs" not in line
                and "preset" not in line]) == 5 + 4


def test_render_reports_a_failed_search_and_skips(gpu_check: ModuleType) -> None:
    res = {"device": "cuda:0", "device_name": "GPU X", "torch": "2", "date": "d", "seconds": 1.0,
           "time_budget": 450.0,
           "presets": [{"preset": "xception", "dtype": "bf16", "input": 299, "skipped": "time budget"}],
           "search": {"command": "nasl search shufflenet", "rc": 2, "seconds": 3.0, "trials": 0,
                      "states": [], "devices": [], "latency_ms": [], "tail": ["boom"]},
           "ranking": {"designs": [], "spearman": float("nan"), "requested": 20}}
    text = gpu_check.render(res)
    assert "skipped: time budget" in text and "exit status 2" in text and "boom" in text
    assert "GPU vs CPU latency ranking (ShuffleNet space)\n\nSkipped (time budget)." in text


def test_search_command_parses(gpu_check: ModuleType, tmp_path: Path) -> None:
    from nasl.cli import build_parser

    cmd = gpu_check.search_cmd("cuda", str(tmp_path))
    args = build_parser().parse_args(cmd[3:])
    assert (args.device, args.trials, args.epochs, args.quiet) == ("cuda", 4, 2, True)


@pytest.mark.slow
def test_dry_run_parts_train_concurrently_and_run_the_main_job(gpu_check: ModuleType,
                                                               tmp_path: Path) -> None:
    """The code paths --dry-run takes on the CPU (the whole --dry-run is minutes here): K
    workers started together in bf16, the main job with training on a named device and
    ``--trials-per-device auto``, the comparison of fronts and the report."""
    import time

    rows = gpu_check.train_rows("cpu", ("bf16",), (2,), epochs=1, subset=128,
                                deadline=time.monotonic() + 600)
    assert len(rows) == 1 and rows[0]["failed"] == 0 and "skipped" not in rows[0], rows
    assert rows[0]["aggregate"] >= rows[0]["per_trial"] > 0 and rows[0]["peak_mb"] is None
    job = gpu_check.main_job("cpu", "cpu", str(tmp_path), timeout=600, tiny=True, auto_k=True)
    assert job["rc"] == 0 and job["train_devices"] == ["cpu"] and job["front"], job
    assert "--train-device cpu" in job["command"] and job["images_per_second"]
    assert "--trials-per-device auto" in job["command"] and job["packing"]["k"] >= 1
    res = {"training": [*rows, {"precision": "fp32", "k": 8, "skipped": "time budget"}],
           "main_job": {"cuda:0": job, "cpu": job},
           "fronts": gpu_check.compare_fronts(job["front"], job["front"])}
    text = "\n".join(gpu_check.render_training(res))
    assert "| bf16 | 2 |" in text and "| fp32 | 8 | skipped: time budget" in text
    assert "training on cuda:0" in text and "Jaccard 1.00" in text
    assert f"`--trials-per-device auto` chose K = {job['packing']['k']}" in text


def test_render_training_without_results(gpu_check: ModuleType) -> None:
    assert gpu_check.compare_fronts([], [])["shared"] == 0
    text = "\n".join(gpu_check.render_training({"training_skipped": "no GPU"}))
    assert "Skipped (no GPU)." in text
