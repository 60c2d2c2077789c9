"""Shared fixtures: a tiny search space that trains in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TINY_SPACE = """\
name: tiny
family: shufflenet
description: a tiny ShuffleNet space for tests
target: {input_size: 64, num_classes: 1000, device: cpu}
proxy: {dataset: digits, resolution: 16, epochs: 2, batch_size: 64, subset: 300, val_subset: 100}
objectives: [{accuracy: max}, {macs: min}, {latency_ms: min}]
params:
  groups: {choices: [1, 3]}
  shuffle: {choices: [true, false]}
  width_mult: {choices: [0.25, 0.5]}
  stage_repeats[1]: {choices: [2, 4]}
  stage_repeats[0]: 2
  stage_repeats[2]: 2
baselines:
  small_g3:
    groups: 3
    width_mult: 0.25
    shuffle: true
    stage_repeats[1]: 2
search: {sampler: random, trials: 3, seed: 0}
"""


@pytest.fixture
def tiny_space(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY_SPACE)
    return p


@pytest.fixture(autouse=True)
def _isolated_locks(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test session gets its own latency lock folder and no W&B network."""
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path_factory.getbasetemp() / "locks"))
    monkeypatch.setenv("WANDB_MODE", os.environ.get("WANDB_MODE", "offline"))
    monkeypatch.setenv("WANDB_SILENT", "true")
