"""Every class of bad space file ends in one clear line: file, line, key path, value, expected."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasl.common.errors import NaslError
from nasl.space import load_space, loads_space

BASE = """\
name: t
family: shufflenet
params:
  groups: {choices: [1, 3]}
  width_mult: {low: 0.5, high: 1.0, step: 0.25}
"""

# name -> (yaml text, line, [substrings the message must contain])
CASES: dict[str, tuple[str, int | None, list[str]]] = {
    "not yaml": ("name: [unclosed\nfamily: x\n", 2, ["not valid YAML"]),
    "empty": ("", None, ["empty file"]),
    "only comments": ("# nothing here\n", None, ["empty file"]),
    "not a mapping": ("- a\n- b\n", 1, ['["a", "b"]', "expected a mapping"]),
    "scalar document": ("hello\n", 1, ["'hello'", "expected a mapping"]),
    "unknown top key": (BASE + "paramz: {}\n", 6, ["paramz", "unknown key",
                                                    "did you mean 'params'?"]),
    "unknown param key": (BASE.replace("step:", "stpe:"), 5,
                          ["params.width_mult.stpe", "did you mean 'step'?"]),
    "unknown section key": (BASE + "target: {input_sise: 160}\n", 6,
                            ["target.input_sise", "did you mean 'input_size'?"]),
    "unknown design choice": (BASE + "  grops: 3\n", 6,
                              ["params.grops", "did you mean 'groups'?"]),
    "unknown family": (BASE.replace("family: shufflenet", "family: shufflenett"), 2,
                       ["family", "'shufflenett'", "did you mean 'shufflenet'?"]),
    "missing family": ("params: {}\n", 1, ["missing key 'family'"]),
    "low > high": (BASE.replace("low: 0.5, high: 1.0", "low: 1.5, high: 1.0"), 5,
                   ["params.width_mult.low", "1.5", "must not exceed high (1.0)"]),
    "empty choices": (BASE.replace("[1, 3]", "[]"), 4,
                      ["params.groups.choices", "[]", "non-empty list"]),
    "groups 0": (BASE.replace("[1, 3]", "[0, 3]"), 4,
                 ["params.groups.choices[0]", ": 0 —", "groups must be an integer >= 1"]),
    "negative width": (BASE.replace("low: 0.5", "low: -0.5"), 5,
                       ["params.width_mult.low", "-0.5", "width_mult must be a number > 0"]),
    "negative fixed width": (BASE + "  shuffle: {value: true}\n  stage_repeats: [4, -8, 4]\n",
                             7, ["params.stage_repeats", "[4, -8, 4]", "stage_repeats"]),
    "repeated choice": (BASE.replace("[1, 3]", "[1, 3, 1]"), 4,
                        ["params.groups.choices[2]", "repeated value"]),
    "step not dividing": (BASE.replace("step: 0.25", "step: 0.3"), 5,
                          ["params.width_mult.step", "0.3", "multiple of step"]),
    "nan bound": (BASE.replace("low: 0.5", "low: .nan"), 5,
                  ["params.width_mult.low", "finite number"]),
    "python tag": (BASE + "description: !!python/object/apply:os.system ['echo hi']\n", 6,
                   ["description", "!!python/object/apply:os.system", "not allowed"]),
    "python name tag": (BASE + "name2: !!python/name:os.system ''\n", 6, ["not allowed"]),
    "custom tag": (BASE + "description: !foo bar\n", 6, ["'!foo'", "not allowed"]),
    "binary tag": (BASE + "description: !!binary aGk=\n", 6, ["'!!binary'", "not allowed"]),
    "duplicate key": (BASE + "  groups: 3\n", 6, ["params.groups", "given twice",
                                                  "line 4"]),
    "non-text key": (BASE + "  3: 4\n", 6, ["key 3 must be text"]),
    "bad section value": (BASE + "target: {input_size: -3}\n", 6,
                          ["target.input_size", "-3", "greater than or equal to 8"]),
    "bad device": (BASE + "target: {device: gpu}\n", 6, ["target.device", "'gpu'",
                                                        "cuda:<index>"]),
    "bad dataset": (BASE + "proxy: {dataset: digitz}\n", 6, ["proxy.dataset", "'digitz'",
                                                            "did you mean 'digits'?"]),
    "bad objective": (BASE + "objectives: [{acuracy: max}]\n", 6,
                      ["objectives[0]", "'acuracy'", "did you mean 'accuracy'?"]),
    "bad direction": (BASE + "objectives: [{macs: up}]\n", 6, ["objectives[0]", "min or max"]),
    "bad budget unit": (BASE + "budget: {macs: 40MFLOPz}\n", 6,
                        ["budget.macs", "'40MFLOPz'", "unknown unit 'MFLOPz'"]),
    "zero budget": (BASE + "budget: {macs: 0}\n", 6, ["budget.macs", "positive"]),
    "negative budget": (BASE + "budget: {latency_ms: -5ms}\n", 6,
                        ["budget.latency_ms", "positive"]),
    "budget metric": (BASE + "budget: {mac: 4M}\n", 6, ["budget.mac", "did you mean 'macs'?"]),
    "when unknown param": (BASE + "  shuffle: {choices: [true, false], when: {grups: 3}}\n",
                           6, ["params.shuffle.when.grups", "did you mean 'groups'?"]),
    "when impossible value": (BASE + "  shuffle: {choices: [true, false], when: {groups: 4}}\n",
                              6, ["params.shuffle.when.groups", ": 4 —", "never takes"]),
    "index out of range": (BASE + "  stage_repeats[5]: 3\n", 6,
                           ["params.stage_repeats[5]", "out of range"]),
    "io is not a choice": (BASE + "  input_size: 160\n", 6, ["target.input_size"]),
    "baseline outside": (BASE + "baselines:\n  b1: {groups: 2}\n", 7,
                         ["baselines.b1.groups", ": 2 —", "outside the space"]),
    "baseline unknown key": (BASE + "baselines:\n  b1: {grups: 3}\n", 7,
                             ["baselines.b1.grups", "did you mean 'groups'?"]),
    "resolution not pixels": (BASE + "  resolution: {choices: [96.5]}\n", 6,
                              ["params.resolution.choices", "pixels"]),
    "recursive alias": (BASE + "description: &a [*a]\n", 6, ["recursive alias"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_error_names_file_line_key_value(case: str, tmp_path: Path) -> None:
    text, line, needles = CASES[case]
    path = tmp_path / "bad_space.yaml"
    path.write_text(text)
    with pytest.raises(NaslError) as e:
        load_space(path)
    msg = str(e.value)
    assert "\n" not in msg
    prefix = f"{path}:{line}: " if line is not None else f"{path}: "
    assert msg.startswith(prefix), msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_python_tag_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = BASE + f"description: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(NaslError):
        loads_space(text, "evil.yaml")
    assert not marker.exists()


BOMB = "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join(
        ['"lol"'] * 9 if i == 0 else [f"*{chr(96 + i)}"] * 9) + "]\n" for i in range(9))


def test_alias_bomb_is_bounded() -> None:
    start = time.perf_counter()
    with pytest.raises(NaslError, match="expands to more than"):
        loads_space(BOMB, "bomb.yaml")
    assert time.perf_counter() - start < 1.0


def test_deep_nesting_is_an_error() -> None:
    with pytest.raises(NaslError, match="nested too deeply"):
        loads_space("[" * 5000 + "]" * 5000, "deep.yaml")


def test_missing_file_lists_shipped() -> None:
    with pytest.raises(NaslError) as e:
        load_space("nope.yaml")
    msg = str(e.value)
    assert msg.startswith(f"no such space file 'nope.yaml' (looked for "
                          f"{Path('nope.yaml').absolute()}), and no shipped space is named "
                          "'nope' (shipped spaces: hybrid, mobilenet, nb201, shufflenet")
    assert "did you mean" not in msg and "\n" not in msg
    with pytest.raises(NaslError, match="did you mean 'shufflenet'"):
        load_space("shufflenett")


def test_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(NaslError, match="is a directory"):
        load_space(tmp_path)
    path = tmp_path / "x.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(NaslError, match="not UTF-8"):
        load_space(path)


def test_merge_keys_work() -> None:
    space = loads_space(BASE + "target: &t {input_size: 160}\nproxy:\n  <<: {resolution: 24}\n"
                        "  epochs: 3\n")
    assert space.target.input_size == 160
    assert (space.proxy.resolution, space.proxy.epochs) == (24, 3)


def _cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@functools.lru_cache(maxsize=1)
def _cli_has_space() -> bool:
    if importlib.util.find_spec("nasl.cli") is None:
        return False
    r = subprocess.run([sys.executable, "-m", "nasl.cli", "space", "--help"],
                       capture_output=True, text=True, env=_cli_env(), timeout=120)
    return r.returncode == 0


needs_cli = pytest.mark.skipif("not _cli_has_space()", reason="no `nasl space` command yet")


@needs_cli
@pytest.mark.parametrize("case", ["unknown param key", "groups 0", "python tag", "not yaml"])
def test_cli_validate_prints_one_line(case: str, tmp_path: Path) -> None:
    text, line, needles = CASES[case]
    path = tmp_path / "bad_space.yaml"
    path.write_text(text)
    env = _cli_env()
    r = subprocess.run([sys.executable, "-m", "nasl.cli", "space", "validate", str(path)],
                       capture_output=True, text=True, env=env, timeout=120)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 2, out
    assert "Traceback" not in out
    assert str(path) in out and all(n in out for n in needles), out


@needs_cli
def test_cli_validate_ok() -> None:
    env = _cli_env()
    r = subprocess.run([sys.executable, "-m", "nasl.cli", "space", "validate", "shufflenet"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_failing_combination_is_reported() -> None:
    # each value builds with the other at its default, but groups 1 × width 0.07 does not
    text = ("family: shufflenet\nparams:\n  groups: {choices: [3, 1]}\n"
            "  width_mult: {choices: [0.5, 0.07]}\n")
    with pytest.raises(NaslError) as e:
        loads_space(text, "combo.yaml")
    msg = str(e.value)
    assert msg.startswith("combo.yaml:2: params: ") and '"groups": 1' in msg
    assert "this combination does not build" in msg and "no wider than conv1" in msg
