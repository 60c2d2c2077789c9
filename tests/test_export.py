"""nasl export: artifacts round-trip in a fresh Python process that cannot import nasl,
output parity, the card's figures, run/trial/pick selection, and every user error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from test_export_codegen import family_archs, randomise

from nasl.common.errors import NaslError
from nasl.export import choose_trial, default_epochs, export_arch, export_preset, export_run
from nasl.families import preset
from nasl.network.arch import ArchConfig
from nasl.network.builder import build_model
from nasl.network.cost import count_macs_flop_counter, count_params
from nasl.run.results import RunDir, open_run_study
from nasl.space import load_space

# Runs in `python -I` (no user site, no cwd on sys.path) with nasl blocked outright: nasl is
# installed in editable mode here, so isolation alone would still find it.
FRESH = r'''
import sys
sys.modules["nasl"] = None
import importlib.util, json
assert importlib.util.find_spec("nasl") is None
try:
    import nasl  # noqa
    raise SystemExit("nasl is importable")
except ImportError:
    pass
import numpy as np, onnxruntime as ort, torch
out = {}
for folder, ref in json.loads(sys.argv[1]):
    data = torch.load(ref)
    x, y = data["x"], data["y"]
    res = {}
    spec = importlib.util.spec_from_file_location("exported_model", folder + "/model.py")
    if spec is not None and __import__("os").path.exists(folder + "/model.py"):
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        model = mod.load_model()
        with torch.no_grad():
            res["py"] = float((model(x) - y).abs().max())
            one = model(torch.randn(mod.INPUT_SHAPE))
        res["shape_ok"] = (tuple(one.shape) == (1, mod.NUM_CLASSES)
                           and tuple(x.shape[1:]) == mod.INPUT_SHAPE[1:])
    if __import__("os").path.exists(folder + "/model.onnx"):
        sess = ort.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
        res["onnx"] = float(np.abs(sess.run(None, {"input": x.numpy()})[0] - y.numpy()).max())
        res["onnx_batch1"] = list(sess.run(None, {"input": x[:1].numpy()})[0].shape)
    if __import__("os").path.exists(folder + "/model.pt2"):
        prog = torch.export.load(folder + "/model.pt2").module()
        res["pt2"] = float((prog(x) - y).abs().max())
        res["pt2_batch1"] = list(prog(x[:1]).shape)
    res["nasl_loaded"] = any(k == "nasl" or k.startswith("nasl.") for k, v in sys.modules.items()
                             if v is not None)
    out[folder] = res
print(json.dumps(out))
'''


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One torch thread: with two, a busy neighbour process slows training ~75x (DESIGN.md)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def fresh_check(pairs: list[tuple[Path, torch.nn.Module]], tmp: Path) -> dict[str, dict[str, Any]]:
    """Run each folder's artifacts in one fresh process on a batch of 3 random images."""
    jobs = []
    for i, (folder, model) in enumerate(pairs):
        arch = json.loads((folder / "arch.json").read_text())
        x = torch.randn(3, arch["in_channels"], arch["input_size"], arch["input_size"])
        with torch.no_grad():
            y = model.eval()(x)
        ref = tmp / f"ref{i}.pt"
        torch.save({"x": x, "y": y}, ref)
        jobs.append((str(folder), str(ref)))
    env = {"OMP_NUM_THREADS": "1", "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-I", "-B", "-c", FRESH, json.dumps(jobs)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_parity(res: dict[str, Any], formats: tuple[str, ...] = ("py", "onnx", "pt2")) -> None:
    assert res["nasl_loaded"] is False
    if "py" in formats:
        assert res["py"] <= 1e-5 and res["shape_ok"]
    if "onnx" in formats:
        assert res["onnx"] <= 1e-4 and res["onnx_batch1"][0] == 1
    if "pt2" in formats:
        assert res["pt2"] <= 1e-4 and res["pt2_batch1"][0] == 1


def card_int(card: str, row: str, column: int) -> int:
    """The integer in ``column`` (1 = exported model, 2 = target) of a card table row."""
    line = next(ln for ln in card.splitlines() if ln.startswith(f"| {row} |"))
    cell = line.split("|")[1 + column].strip()
    return int(cell.split(" ")[0].replace(",", ""))


# --------------------------------------------------------------------------- per family
def small_family_archs() -> dict[str, ArchConfig]:
    """One short network per family (few blocks: exporting to ONNX costs ~0.1 s per block)."""
    return {
        "squeezenet": preset("squeezenet1_0", input_size=48, num_classes=7, bypass=True, base_e=32,
                             incr_e=32, num_fire=4, pool_after=[2, 4]),
        "mobilenet": preset("mobilenet_v1", width_mult=0.25, input_size=32, num_classes=10,
                            stage_repeats=[1, 1, 1, 2, 1]),
        "shufflenet": preset("shufflenet_v1", width_mult=0.25, input_size=32, num_classes=10,
                             stage_repeats=[1, 2, 1]),
        "xception": family_archs()["xception"],
        "hybrid": family_archs()["hybrid"],
    }


@pytest.mark.slow
def test_every_family_round_trips_in_a_fresh_process(tmp_path: Path) -> None:
    pairs = []
    for name, arch in small_family_archs().items():
        model = randomise(build_model(arch, seed=3))
        result = export_arch(arch, tmp_path / name, model=model)
        assert set(result.max_diff) == {"py", "onnx", "pt2"}
        assert result.max_diff["py"] <= 1e-5 and max(result.max_diff.values()) <= 1e-4
        assert not (tmp_path / name / "model.onnx.data").exists()  # one self-contained file
        assert ArchConfig.from_json((tmp_path / name / "arch.json").read_text()) == arch
        pairs.append((tmp_path / name, model))
    for folder, res in fresh_check(pairs, tmp_path).items():
        assert_parity(res), folder


def test_export_arch_card_and_channels_last_model(tmp_path: Path) -> None:
    arch = family_archs()["grey-1-channel"]
    model = randomise(build_model(arch, seed=0)).to(memory_format=torch.channels_last)
    result = export_arch(arch, tmp_path / "e", model=model, formats="py")
    assert set(result.files) == {"arch.json", "weights.safetensors", "model.py", "card.md"}
    card = (tmp_path / "e" / "card.md").read_text()
    assert card_int(card, "MACs", 1) == arch.macs() == count_macs_flop_counter(model)
    assert card_int(card, "params", 1) == arch.params() == count_params(model)
    assert "(1, 1, 16, 16)" in card
    res = fresh_check([(tmp_path / "e", model)], tmp_path)
    assert_parity(next(iter(res.values())), ("py",))


# --------------------------------------------------------------------------- a run folder
DESIGNS = {  # trial number -> (design, accuracy, latency_ms)
    0: ({"groups": 3, "shuffle": True, "width_mult": 0.5, "resolution": 128,
         "stage_repeats[0]": 2, "stage_repeats[1]": 4, "stage_repeats[2]": 2}, 0.9, 3.0),
    1: ({"groups": 3, "shuffle": True, "width_mult": 0.25, "resolution": 96,
         "stage_repeats[0]": 2, "stage_repeats[1]": 4, "stage_repeats[2]": 2}, 0.5, 2.0),
    2: ({"groups": 3, "shuffle": False, "width_mult": 0.25, "resolution": 112,
         "stage_repeats[0]": 2, "stage_repeats[1]": 4, "stage_repeats[2]": 2}, 0.7, 1.0),
}
OBJECTIVES = [["accuracy", "maximize"], ["macs", "minimize"], ["latency_ms", "minimize"]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished-looking run: space.yaml, env.json, an SQLite study with 3 COMPLETE trials
    (user attributes as `nasl search` writes them), one FAIL and one PRUNED trial."""
    root = tmp_path_factory.mktemp("runs") / "shuffle-run"
    root.mkdir()
    space = load_space("shufflenet").with_overrides({"proxy.dataset": "fake:40", "proxy.epochs": 1})
    (root / "space.yaml").write_text(space.to_yaml())
    storage = f"sqlite:///{root / 'study.db'}"
    env = {"run": root.name, "space": "shufflenet", "family": "shufflenet", "storage": storage,
           "study": root.name, "objectives": OBJECTIVES, "budgets": {"macs": 40e6},
           "sampler": "tpe", "trials": 3, "data": "fake:40", "epochs": 1, "proxy_resolution": 32,
           "seed": 0, "choice_names": list(space.order), "command": "nasl search shufflenet"}
    (root / "env.json").write_text(json.dumps(env))
    study = optuna.create_study(storage=storage, study_name=root.name,
                                directions=[d for _, d in OBJECTIVES])
    for number, (design, acc, lat) in DESIGNS.items():
        arch = space.to_arch(design)
        attrs = {"choices": design, "macs": arch.macs(), "params": arch.params(),
                 "size_mb": arch.params() * 4 / 2**20, "latency_ms": lat, "latency_p10_ms": lat * 0.9,
                 "latency_p90_ms": lat * 1.2, "device": "cpu", "device_name": "Test CPU",
                 "latency": {"threads": 1, "batch_size": 1, "dtype": "fp32", "repeats": 100},
                 "accuracy": acc, "epochs": 1, "feasible": True, "baseline": "",
                 "seed": 100 + number, "arch_id": arch.id, "reason": ""}
        study.add_trial(optuna.trial.create_trial(values=[acc, arch.macs(), lat], user_attrs=attrs,
                                                  state=optuna.trial.TrialState.COMPLETE))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={
        "choices": DESIGNS[0][0], "reason": "RuntimeError: out of memory"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={
        "choices": DESIGNS[1][0], "reason": "stopped early: dominated at epoch 1"}))
    return root


@pytest.mark.parametrize(("how", "number"), [("accuracy", 0), ("macs", 1), ("latency", 2),
                                             ("latency_ms", 2)])
def test_pick_from_the_front(run_dir: Path, how: str, number: int) -> None:
    study, env = open_run_study(RunDir(run_dir))
    assert choose_trial(study, env, "r", trial=None, pick=how).number == number


def test_knee_is_a_front_member_and_the_default(run_dir: Path) -> None:
    study, env = open_run_study(RunDir(run_dir))
    knee = choose_trial(study, env, "r", trial=None, pick="knee")
    assert knee.number in DESIGNS
    assert choose_trial(study, env, "r", trial=None, pick=None).number == knee.number


def test_default_epochs() -> None:
    assert default_epochs(1) == 30 and default_epochs(20) == 60 and default_epochs(None) == 30


@pytest.mark.slow
def test_export_run_trains_on_train_split_and_reports_test_accuracy(run_dir: Path,
                                                                  tmp_path: Path) -> None:
    result = export_run(run_dir, pick="accuracy", epochs=1, progress=False)
    out = run_dir / "export" / "trial-0"
    assert result.out == out
    assert {p.name for p in out.iterdir()} >= {"model.py", "weights.safetensors", "model.onnx",
                                               "model.pt2", "arch.json", "card.md"}
    arch = result.arch  # the proxy network: fake data is 3 x 32 px at rho = 128/224 -> 18 px
    assert (arch.in_channels, arch.input_size, arch.num_classes) == (3, 18, 10)
    card = (out / "card.md").read_text()
    target = load_space(run_dir / "space.yaml").to_arch(DESIGNS[0][0])
    assert card_int(card, "MACs", 2) == target.macs() == result.card["target"]["macs_recorded"]
    assert card_int(card, "params", 2) == result.card["target"]["params_recorded"]
    assert card_int(card, "MACs", 1) == arch.macs() and card_int(card, "params", 1) == arch.params()
    assert "identical" in card and "Trial **0**" in card and "--pick accuracy" in card
    assert "3.000 ms" in card and "Test CPU" in card and "p90 3.600 ms" in card  # latency + spread
    acc = result.card["accuracy"]
    assert acc["trained"] and acc["epochs"] == 1 and 0.0 <= acc["test"] <= 1.0
    assert f"{100 * acc['test']:.2f} %" in card and "90.00 %" in card  # test and proxy accuracy
    assert "```yaml" in card and "torch " in card and "objectives: accuracy (maximize)" in card
    model = build_model(arch, seed=0)
    from safetensors.torch import load_file

    model.load_state_dict(load_file(out / "weights.safetensors"), strict=True)
    res = fresh_check([(out, model)], tmp_path)
    assert_parity(next(iter(res.values())))


def test_no_train_exports_the_target_with_the_trials_exact_costs(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t1"
    result = export_run(run_dir, trial=1, train=False, formats="py", out=out, progress=False)
    arch, ua = result.arch, result.card["target"]
    assert arch.input_size == 96 and arch.num_classes == 1000
    model = build_model(arch, seed=101)
    assert count_params(model) == ua["params_recorded"] == arch.params()
    assert count_macs_flop_counter(model) == ua["macs_recorded"] == arch.macs()
    card = (out / "card.md").read_text()
    assert card_int(card, "MACs", 1) == card_int(card, "MACs", 2) == ua["macs_recorded"]
    assert card_int(card, "params", 1) == card_int(card, "params", 2) == ua["params_recorded"]
    assert "not trained" in card and "--no-train" in card and "--trial 1" in card
    res = fresh_check([(out, model)], tmp_path)
    assert_parity(next(iter(res.values())), ("py",))


@pytest.mark.slow
def test_export_preset_grey_data(tmp_path: Path) -> None:
    result = export_preset("mobilenet_v1", {"width_mult": 0.25}, epochs=1, data="digits",
                           resolution=16, formats="py,pt2", out=tmp_path / "p", latency=False,
                           progress=False)
    assert (result.arch.in_channels, result.arch.input_size) == (1, 16)  # grey: one channel
    card = (tmp_path / "p" / "card.md").read_text()
    assert "--preset mobilenet_v1 --set width_mult=0.25" in card and "paper setting" in card
    assert card_int(card, "MACs", 2) == result.card["target"]["macs"]
    assert "MEAN = (" in (tmp_path / "p" / "model.py").read_text()


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"trial": 99}, r"has no trial 99 \(trials 0\.\.4\)"),
    ({"trial": 3}, r"trial 3 is FAIL, not COMPLETE \(RuntimeError: out of memory\)"),
    ({"trial": 4}, r"trial 4 is PRUNED, not COMPLETE \(stopped early"),
    ({"pick": "best"}, r"--pick 'best': unknown choice; expected one of knee, accuracy, macs, "
                       r"latency_ms, latency"),
    ({"trial": 0, "pick": "knee"}, r"--trial and --pick exclude each other"),
    ({"formats": "py,tflite"}, r"unknown format 'tflite'; expected .*py, onnx, pt2"),
    ({"epochs": 0}, r"--epochs 0: expected an integer >= 1"),
])
def test_user_errors(run_dir: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(NaslError, match=message) as err:
        export_run(run_dir, progress=False, **kwargs)
    assert "\n" not in str(err.value)


def test_missing_run(tmp_path: Path) -> None:
    with pytest.raises(NaslError, match="no run folder"):
        export_run(tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NaslError, match="not a nasl run: env.json missing"):
        export_run(tmp_path / "empty", progress=False)


def test_unwritable_out_dir(run_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(NaslError, match=re.escape(f"cannot write the export folder '{blocker}/x'")):
        export_run(run_dir, trial=0, out=blocker / "x", progress=False)
    with pytest.raises(NaslError, match="cannot write the export folder"):
        export_arch(family_archs()["mobilenet"], blocker / "y")


def test_unknown_preset_and_bad_override(tmp_path: Path) -> None:
    with pytest.raises(NaslError, match="unknown preset 'mobilenet'; did you mean 'mobilenet_v1'"):
        export_preset("mobilenet", out=tmp_path)
    with pytest.raises(NaslError, match="unknown design choice 'width'"):
        export_preset("mobilenet_v1", {"width": 0.5}, out=tmp_path)
