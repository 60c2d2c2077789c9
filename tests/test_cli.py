"""The command line: presets, cost, space and export commands, and their errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nasl.cli import main
from nasl.space import loads_space


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_presets_table_and_json(capsys):
    rc, out, _ = run(capsys, "presets", "--json")
    assert rc == 0
    rows = {r["preset"]: r for r in json.loads(out)}
    assert rows["squeezenet1_0"]["params"] == 1_248_424
    assert rows["squeezenet1_1"]["params"] == 1_235_496
    assert rows["xception"]["params"] == 22_855_952
    assert round(rows["mobilenet_v1"]["macs"] / 1e6) == 569
    rc, out, _ = run(capsys, "presets")
    assert rc == 0 and "shufflenet_v1" in out and "40MFLOPs = 40e6" in out


def test_cost_example_from_the_issue(capsys):
    rc, out, _ = run(capsys, "cost", "mobilenet_v1", "--set", "width_mult=0.5",
                     "--input-size", "160", "--json")
    assert rc == 0
    d = json.loads(out)
    assert isinstance(d["macs"], int) and round(d["macs"] / 1e6) == 77  # "about 76M"
    assert abs(d["macs"] - 76.5e6) < 1e6
    assert round(d["params"] / 1e6, 2) == 1.33
    assert d["input_size"] == 160 and d["size_mb"] == pytest.approx(1_331_592 * 4 / 2**20)


def test_cost_latency_json(capsys):
    rc, out, _ = run(capsys, "cost", "shufflenet_v1", "--set", "width_mult=0.25",
                     "--input-size", "64", "--latency", "--device", "cpu", "--repeats", "5",
                     "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["device"] == "cpu" and d["latency_p10_ms"] <= d["latency_ms"] <= d["latency_p90_ms"]


@pytest.mark.parametrize("args,msg", [
    (["cost", "resnet50"], "unknown preset 'resnet50'"),
    (["cost", "mobilenet_v2"], "did you mean 'mobilenet_v1'"),
    (["cost", "mobilenet_v1", "--set", "widht_mult=2"], "did you mean 'width_mult'"),
    (["cost", "shufflenet_v1", "--set", "groups=0"], "groups"),
    (["cost", "mobilenet_v1", "--set", "width_mult=-1"], "width_mult"),
    (["cost", "mobilenet_v1", "--set", "width_mult"], "KEY=VALUE"),
    (["cost", "mobilenet_v1", "--input-size", "big"], "invalid int"),
    (["cost", "mobilenet_v1", "--device", "tpu", "--latency"], "tpu"),
    (["space", "validate", "no_such_space.yaml"], "no such space file"),
    (["export", "/no/such/run"], "no run folder"),
    (["export"], "give a run folder or --preset"),
    (["report", "/no/such/run"], "no run folder"),
])
def test_errors_are_one_line_exit_2(capsys, args, msg):
    rc, out, err = run(capsys, *args)
    assert rc == 2
    assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_space_commands(capsys, tmp_path: Path):
    rc, out, _ = run(capsys, "space", "list")
    assert rc == 0 and all(n in out for n in ("shufflenet", "mobilenet", "squeezenet",
                                              "xception", "hybrid"))
    rc, out, _ = run(capsys, "space", "validate", "shufflenet")
    assert rc == 0 and "ok" in out
    rc, out, _ = run(capsys, "space", "show", "shufflenet", "--budget", "40MFLOPs", "-n", "50")
    assert rc == 0 and "feasible" in out and "shufflenet_0.5x_g3" in out
    rc, out, _ = run(capsys, "space", "sample", "shufflenet", "-n", "3", "--seed", "0", "--json")
    assert rc == 0
    a = json.loads(out)
    rc, out, _ = run(capsys, "space", "sample", "shufflenet", "-n", "3", "--seed", "0", "--json")
    assert json.loads(out) == a and len(a) == 3  # same seed, same designs
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: shufflenet\nparams:\n  groups: {choices: [0, 3]}\n")
    rc, _, err = run(capsys, "space", "validate", str(bad))
    assert rc == 2 and "bad.yaml:3" in err and "params.groups.choices[0]" in err


def test_shipped_spaces_work_by_name_from_any_directory(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "nasl.cli", "space", "validate", "mobilenet"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_tracking_section_in_yaml(tiny_space: Path):
    text = tiny_space.read_text() + "tracking: {wandb: {project: demo, entity: me}}\n"
    space = loads_space(text, "t.yaml")
    assert space.tracking.wandb.project == "demo" and space.tracking.wandb.enabled
    assert loads_space(space.to_yaml(), "again.yaml") == space
    with pytest.raises(Exception, match=r"tracking\.wandb\.projet: unknown key; did you mean "
                                        r"'project'"):
        loads_space(tiny_space.read_text() + "tracking: {wandb: {projet: demo}}\n", "t.yaml")
