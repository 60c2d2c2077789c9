"""README.md is a front door and its facts are tested: every command in a README/docs code
block marked ``<!-- runnable -->`` runs (searches with tiny settings), the sample outputs are
the code's (bench/make_readme_samples.py), the annotated space file loads, and no section
heading appears in two files."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from nasl.cli import main

REPO = Path(__file__).resolve().parents[1]
HEADLINE_INSTALL = ('pip install torch==2.13.0 && pip install -e ".[dev]" && '
                    "nasl search spaces/shufflenet.yaml --budget 40MFLOPs")
#: Appended to every ``nasl search`` of a runnable block (later flags win in argparse).
TINY_SEARCH = ["--trials", "1", "--epochs", "1", "--data", "digits", "--confirm-seeds", "0",
               "--quiet"]
RUNNABLE = re.compile(r"<!-- runnable -->\s*```bash\n(.*?)```", re.S)


def _docs() -> list[Path]:
    if not (REPO / "README.md").is_file() or not (REPO / "docs").is_dir():
        pytest.skip("not a source checkout")
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def runnable_blocks(paths: list[Path]) -> list[tuple[str, list[str]]]:
    """(file:index, its command lines without comments) of every block marked runnable."""
    out = []
    for path in paths:
        for i, m in enumerate(RUNNABLE.finditer(path.read_text())):
            cmds = [line.split("  #", 1)[0].strip() for line in m.group(1).splitlines()]
            out.append((f"{path.name}:{i}", [c for c in cmds if c and not c.startswith("#")]))
    return out


def _samples_script() -> ModuleType:
    path = REPO / "bench" / "make_readme_samples.py"
    if not path.is_file():
        pytest.skip("not a source checkout")
    spec = importlib.util.spec_from_file_location("make_readme_samples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample(text: str, name: str) -> str:
    m = re.search(rf"<!-- sample: {name} -->(.*?)<!-- /sample -->", text, re.S)
    assert m is not None, name
    return m.group(1)


def test_readme_is_a_short_front_door() -> None:
    readme = _docs()[0]
    text = readme.read_text()
    assert len(text.encode()) <= 15_000
    first = "\n".join(text.splitlines()[:40])
    for needed in ("![", "docs/img/pareto.png", "git clone", HEADLINE_INSTALL, "python -m pytest",
                   "GPU", "min"):
        assert needed in first, needed
    assert "## Contents" in text
    for link in re.findall(r"\]\((docs/[\w.]+)\)", text):
        assert (REPO / link).is_file(), link


def test_no_section_heading_in_two_files() -> None:
    seen: dict[str, str] = {}
    for path in _docs():
        for heading in re.findall(r"^##+ (.+)$", path.read_text(), re.M):
            assert heading not in seen, f"{heading!r} in {seen.get(heading)} and {path.name}"
            seen[heading] = path.name


def test_every_runnable_block_is_found() -> None:
    blocks = dict(runnable_blocks(_docs()))
    assert "README.md:0" in blocks and any(k.startswith("spaces.md") for k in blocks)
    assert all(c.startswith("nasl ") for cmds in blocks.values() for c in cmds), blocks


def _block_ids() -> list[str]:
    try:
        return [k for k, _ in runnable_blocks(_docs())]
    except pytest.skip.Exception:
        return []


@pytest.mark.slow
@pytest.mark.parametrize("block", _block_ids())
def test_runnable_commands_run(block: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """Each marked block runs top to bottom in a fresh folder; each command exits 0."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    for cmd in dict(runnable_blocks(_docs()))[block]:
        argv = shlex.split(cmd)[1:]
        if argv[0] == "search":
            argv += TINY_SEARCH
        if argv[0] == "cost" and "--latency" in argv:
            argv += ["--repeats", "3"]
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 0, (cmd, err[-2000:])


def test_cost_json_sample_is_the_real_output() -> None:
    script = _samples_script()
    text = (REPO / "docs" / "spaces.md").read_text()
    assert _sample(text, "cost-json").strip() == f"```json\n{script.cost_json()}\n```"
    assert '"macs": 36593664' in script.cost_json()


def test_trials_columns_sample_is_the_real_list() -> None:
    from nasl.run import results

    script = _samples_script()
    text = (REPO / "docs" / "results.md").read_text()
    assert _sample(text, "trials-columns") == script.trials_columns()
    assert "threads" in script.trials_columns() and "cpu_ratio" in script.trials_columns()
    assert script.trials_columns() == "`" + ", ".join(results.AFTER) + "`"


def test_trials_fields_table_is_the_record() -> None:
    """docs/results.md's table of trial fields is generated from nasl.common.record.TrialRecord."""
    script = _samples_script()
    text = (REPO / "docs" / "results.md").read_text()
    assert _sample(text, "trials-fields") == script.trials_fields()
    assert "`size_int8_mb`" in script.trials_fields()


def test_main_job_samples_have_the_current_format() -> None:
    """The excerpt in README.md and the full output in docs/results.md come from a real log
    in the format the code prints now (per-trial n/N, design, MACs, time left)."""
    trial = re.compile(r"^trial \d+/\d+ · #\d+ .* · [\d.]+ [kMG]? ?MACs · .+$")
    for path, name in ((REPO / "README.md", "main-job"), (REPO / "docs" / "results.md",
                                                            "main-job-full")):
        lines = _sample(path.read_text(), name).strip().strip("`").strip().splitlines()
        trials = [ln for ln in lines if ln.startswith("trial ")]
        assert trials and all(trial.match(ln) for ln in trials), (path.name, trials)
        assert any(" left" in ln for ln in trials)
        assert any(ln.startswith("Pareto front") for ln in lines)
        assert any(ln.startswith("Answer under") for ln in lines)  # the answer comes first
        assert any("knee (balanced)" in ln for ln in lines)


def test_excerpt_picks_trials_stages_the_answer_and_the_front() -> None:
    script = _samples_script()
    log = "\n".join([*(f"trial {i}/4 · #{i} g=1 · 1.0 M MACs · 80.0 % in 1 s" for i in range(1, 5)),
                     "confirmation: the designs that can change the answer",
                     "confirm 1/12 · #1 · 6 epochs · plain", "re-timing: the front",
                     "Answer under plain: sgd (scored on the holdout; 12/12 trainings):",
                     "  most accurate within budget: #1 85.0 % [84.0, 86.0] (2 seeds)",
                     "  fastest within δ of the best: #2", "  knee (balanced): #1 85.0 %",
                     "  claim: #1 is more accurate than b", "Pareto front (2 of 4 trials)",
                     " #  trial", " 1      1", "4 trained (0 pruned, 0 failed), front 2",
                     "  /tmp/x/trials.csv"])
    lines = script.excerpt(log)
    assert len(lines) == 10 and lines[0].startswith("trial 1/4") and lines[3].startswith("trial 4/4")
    assert lines[4:6] == ["confirmation: the designs that can change the answer", "re-timing: the front"]
    assert lines[6].startswith("Answer under plain") and "most accurate" in lines[7]
    assert "knee" in lines[8] and lines[9] == "Pareto front (2 of 4 trials)"


def test_annotated_space_file_loads() -> None:
    from nasl.space import loads_space

    text = (REPO / "docs" / "spaces.md").read_text() if (REPO / "docs").is_dir() else ""
    if not text:
        pytest.skip("not a source checkout")
    block = text.split("<!-- space-file -->\n```yaml\n", 1)[1].split("```", 1)[0]
    space = loads_space(block)
    assert space.target.runtime == "torch" and space.tracking.wandb is not None
    assert "runtime:" in block and "tracking:" in block
