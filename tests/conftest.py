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


@pytest.fixture(scope="module")
def ray_down():
    """Shut a local Ray down after the module that uses it (``pytestmark`` or autouse)."""
    yield
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except ImportError:
        pass


def db_count(db: Path, sql: str, *params: object) -> int:
    """A count from an Optuna SQLite file, read-only (never creates or migrates the schema,
    which would race with the process that is creating it)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute(sql, params).fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def wait_for_count(db: Path, sql: str, *params: object, timeout: float = 240,
                   alive=lambda: True) -> bool:
    """Poll until ``sql`` counts at least one row (False on timeout or when not ``alive()``)."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline and alive():
        if db_count(db, sql, *params) > 0:
            return True
        time.sleep(0.3)
    return False


COMPLETE_SQL = "SELECT count(*) FROM trials WHERE state = 'COMPLETE'"
TRAINED_SQL = "SELECT count(*) FROM trial_user_attributes WHERE key = 'trained'"
STUDY_SQL = "SELECT count(*) FROM studies WHERE study_name = ?"
