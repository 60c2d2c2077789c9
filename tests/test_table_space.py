"""Tabular spaces (family: table): loading, lookup, seeded noise, errors, and a search on nb201."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nasl.cli import main
from nasl.space import load_space
from nasl.space.tabledata import nb201_cell_string, nb201_costs, parse_nb201_cell

ROW1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _one_line_error(capsys: pytest.CaptureFixture[str], rc: int, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("nasl: error:")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_nb201_looks_up_the_shipped_table() -> None:
    space = load_space("nb201")
    assert space.family == "table" and len(space.order) == 6
    assert all(len(p.choices) == 5 for p in space.params)
    params = dict(zip(space.order, parse_nb201_cell(ROW1), strict=True))
    row = space.to_arch(params)
    assert row.id == "1" and not row.missing
    assert row.values["accuracy"] == pytest.approx(0.9366)
    assert row.values["latency_ms"] == pytest.approx(54.777)
    pixel = space.with_overrides({"table.device": "pixel3"}).to_arch(params)
    assert pixel.values["latency_ms"] == pytest.approx(17.238)
    assert pixel.values["accuracy"] == row.values["accuracy"]


def test_nb201_cell_parser_and_costs() -> None:
    ops = parse_nb201_cell(ROW1)
    assert ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3",
                   "skip_connect")
    assert nb201_cell_string(ops) == ROW1
    smallest, largest = nb201_costs(["none"] * 6), nb201_costs(["nor_conv_3x3"] * 6)
    assert 7.7e6 < smallest["macs"] < 7.9e6 and 219e6 < largest["macs"] < 221e6  # the paper's range
    with pytest.raises(ValueError, match="unknown op 'conv_5x5'"):
        parse_nb201_cell(ROW1.replace("avg_pool_3x3", "conv_5x5"))
    with pytest.raises(ValueError, match="expected 3 nodes"):
        parse_nb201_cell("|none~0|+|none~0|none~1|")


def _write(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _space(tmp_path: Path, table: str = "t.csv", metrics: str = "{accuracy: acc, latency_ms: lat}",
           objectives: str = "[{accuracy: max}, {latency_ms: min}]", extra: str = "",
           choices: str = "choices: [a, b]") -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(f"name: mine\nfamily: table\ntable:\n  file: {table}\n  {choices}\n"
                 f"  metrics: {metrics}\n{extra}objectives: {objectives}\n"
                 "search: {sampler: random, trials: 4, seed: 0}\n")
    return p


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rows: list[list[object]] = [["a", "b", "acc", "lat", "sd"]]
    for a in (1, 2, 3):
        for b in ("x", "y"):
            if (a, b) != (3, "y"):  # one combination missing
                rows.append([a, b, 0.5 + 0.1 * a, 10 * a + (b == "y"), 0.01])
    rows.append([1, "x", 0.7, 10, 0.01])  # a duplicate design: averaged
    return _write(tmp_path / "t.csv", rows)


def test_user_table_relative_path_duplicates_and_seeded_noise(tmp_path: Path, table: Path) -> None:
    space = load_space(_space(tmp_path))  # t.csv: relative to the YAML file
    assert [p.choices for p in space.params] == [("1", "2", "3"), ("x", "y")]
    assert space.to_arch({"a": "1", "b": "x"}).values["accuracy"] == pytest.approx(0.65)
    assert space.to_arch({"a": "3", "b": "y"}).missing
    noisy = load_space(_space(tmp_path, choices="choices: [a, b]\n  noise: {column: sd}"))
    row = noisy.to_arch({"a": "2", "b": "x"})
    assert row.accuracy(1) == row.accuracy(1) != row.accuracy(2)  # seeded, per seed
    assert abs(row.accuracy(1) - 0.7) < 0.05


@pytest.mark.parametrize("kwargs,words", [
    ({"metrics": "{accuracy: accuracy_pct, latency_ms: lat}"}, ["s.yaml", "table.metrics.accuracy",
                                                                "accuracy_pct", "no such column in t.csv"]),
    ({"choices": "choices: [a, c]"}, ["table.choices[1]", "'c'", "expected one of: a, b, acc"]),
    ({"objectives": "[{accuracy: up}, {latency_ms: min}]"}, ["objectives[0]", "up", "expected min or max"]),
    ({"objectives": "[{accuracy: max}, {macs: min}]"},
     ["objectives[1]", "macs", "not a metric of this table"]),
    ({"table": "nowhere.csv"}, ["table.file", "nowhere.csv", "no such file"]),
    ({"metrics": "{accuracy: acc, latency_ms: 'l{device}'}"}, ["table.device", "expected one of: at"]),
    ({"extra": "budget: {macs: 10M}\n"}, ["budget.macs", "not a metric of this table"]),
])
def test_bad_table_spaces_end_in_one_line(tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str],
                                          kwargs: dict[str, str], words: list[str]) -> None:
    p = _space(tmp_path, **kwargs)
    _one_line_error(capsys, main(["space", "validate", str(p)]), *words)


def test_unknown_op_string_names_file_row_and_ops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = ROW1.replace("avg_pool_3x3", "max_pool")
    _write(tmp_path / "c.csv", [["arch", "acc"], [ROW1, 0.9], [bad, 0.8]])
    p = _space(tmp_path, table="c.csv", metrics="{accuracy: acc}", objectives="[{accuracy: max}, "
               "{macs: min}]", choices="cell: {column: arch, format: nb201}")
    line = _one_line_error(capsys, main(["space", "validate", str(p)]), "s.yaml", "table.cell.column",
                           "c.csv row 2", "unknown op 'max_pool'", "nor_conv_3x3")
    assert "avg_pool_3x3" in line
    _write(tmp_path / "c.csv", [["arch", "acc"], [ROW1, "n/a"]])
    _one_line_error(capsys, main(["space", "validate", str(p)]), "table.metrics.accuracy", "'n/a'",
                    "not a finite number")


@pytest.mark.slow
def test_search_on_nb201_with_budgets_noise_and_confirmation(tmp_path: Path) -> None:
    space = load_space("nb201")
    p = tmp_path / "nb.yaml"  # the shipped table by name, from a YAML elsewhere; noisy
    p.write_text(space.to_yaml().replace("  id: index\n", "  id: index\n  noise: {std: 0.005}\n"))
    runs = tmp_path / "runs"
    rc = main(["search", str(p), "--trials", "25", "--name", "r", "--runs-dir", str(runs), "--quiet",
               "--budget", "12ms", "--budget", "60MMACs", "--confirm-seeds", "2", "--seed", "3",
               "--sampler", "tpe"])  # (pick proposes within the budgets: nothing to reject)
    assert rc == 0
    run = runs / "r"
    for f in ("trials.csv", "pareto.csv", "pareto.json", "report.html", "env.json", "space.yaml"):
        assert (run / f).is_file(), f
    rows = list(csv.DictReader((run / "trials.csv").open()))
    done = [r for r in rows if r["state"] == "COMPLETE"]
    rejected = [r for r in rows if r["feasible"] == "False"]
    assert len(done) == 25 and rejected  # budgets reject before evaluation, counted apart
    assert all("over budget" in r["reason"] for r in rejected)
    assert all(float(r["latency_ms"]) <= 12 and float(r["macs"]) <= 60e6 for r in done)
    env = json.loads((run / "env.json").read_text())
    assert env["family"] == "table" and env["trials"] == 25
    answer = json.loads((run / "pareto.json").read_text())["answer"]["recommendation"]
    assert any(r["n"] >= 2 and r["high"] > r["low"] for r in answer)  # confirmed on noisy seeds
    assert load_space(run / "space.yaml").to_arch  # the run's own space reloads (resume)


@pytest.mark.parametrize("argv", [["latency", "calibrate", "nb201"], ["latency", "predict", "nb201"]])
def test_commands_that_build_networks_refuse_a_table(argv: list[str], capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    _one_line_error(capsys, main(argv), "latency", "'nb201' is a tabular space")


def test_search_of_a_user_table_rejects_designs_it_lacks(tmp_path: Path, table: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from nasl.search import lifecycle

    monkeypatch.setattr(lifecycle, "REPEATS_IN_A_ROW", 20)  # (200 by default)
    p = _space(tmp_path, choices="choices: [a, b]\n  noise: {column: sd}")
    runs = tmp_path / "runs"
    rc = main(["search", str(p), "--trials", "8", "--name", "u", "--runs-dir", str(runs), "--quiet",
               "--confirm-seeds", "0", "--seed", "1"])
    assert rc == 0
    rows = list(csv.DictReader((runs / "u" / "trials.csv").open()))
    lacking = [r for r in rows if (r["a"], r["b"]) == ("3", "y")]
    assert lacking and all(r["feasible"] == "False" and "not in the table" in r["reason"] for r in lacking)
    done = [r for r in rows if r["state"] == "COMPLETE"]
    # the table has 5 designs: each is evaluated once; proposals of a design seen before are
    # told its values (REPEAT rows, not counted), and the search stops when nothing new comes
    assert sorted((r["a"], r["b"]) for r in done) == [("1", "x"), ("1", "y"), ("2", "x"), ("2", "y"),
                                                      ("3", "x")]
    repeats = [r for r in rows if r["state"] == "REPEAT"]
    assert len(repeats) >= 20 and all("repeat of trial" in r["reason"] for r in repeats)
    first = {(r["a"], r["b"]): r for r in done}
    assert all(r["accuracy"] == first[(r["a"], r["b"])]["accuracy"] for r in repeats)
    front = json.loads((runs / "u" / "pareto.json").read_text())
    assert front and (runs / "u" / "report.html").is_file()


def test_a_past_runs_trials_csv_is_a_table(tmp_path: Path) -> None:
    """Rows with an empty metric (rejected, failed trials) are left out; repeats averaged."""
    _write(tmp_path / "trials.csv", [
        ["number", "state", "groups", "width_mult", "accuracy", "latency_ms"],
        [0, "COMPLETE", 3, 0.5, 0.81, 4.0], [1, "INFEASIBLE", 8, 1.0, "", ""],
        [2, "COMPLETE", 8, 0.5, 0.84, 5.0], [3, "COMPLETE", 3, 0.5, 0.83, 4.2],
        [4, "FAIL", 3, 1.0, "", 6.0]])
    p = _space(tmp_path, table="trials.csv", choices="choices: [groups, width_mult]",
               metrics="{accuracy: accuracy, latency_ms: latency_ms}")
    space = load_space(p)
    assert [p.choices for p in space.params] == [("3", "8"), ("0.5",)]
    assert space.to_arch({"groups": "3", "width_mult": "0.5"}).values["accuracy"] == pytest.approx(0.82)
    assert space.to_arch({"groups": "8", "width_mult": "0.5"}).values["latency_ms"] == 5.0


def test_confirmation_and_seeds_look_up_with_seeded_noise(tmp_path: Path, table: Path) -> None:
    from nasl.search.objective import make_evaluator
    from nasl.search.options import SearchOptions, resolve_settings

    space = load_space(_space(tmp_path, choices="choices: [a, b]\n  noise: {column: sd}"))
    ev = make_evaluator(space, resolve_settings(space, SearchOptions()))
    params = {"a": "2", "b": "y"}
    accs = ev.train_seeds(params, [1, 2, 3])
    assert len(set(accs)) == 3 and all(abs(a - 0.7) < 0.05 for a in accs)
    assert ev.train_seeds(params, [1, 2, 3]) == accs  # the same seeds give the same values
    acc, mask = ev.confirm_train(params, 2, epochs=9, recipe=None)
    assert acc == accs[1] and mask is None
    assert ev.latency(space.to_arch(params)).median_ms == 21.0


@pytest.mark.slow
def test_pick_is_the_table_default_and_evaluates_new_designs(tmp_path: Path) -> None:
    """`nasl search nb201` uses `pick` (TPE proposes, a GP with the known latency picks; issue
    23): every trial is a design not evaluated before and within the latency budget (its
    latency is known before evaluation: nothing is rejected), and the run folder is written."""
    assert load_space("nb201").search.sampler == "pick"
    runs = tmp_path / "runs"
    rc = main(["search", "nb201", "--trials", "30", "--name", "p", "--runs-dir", str(runs), "--quiet",
               "--confirm-seeds", "0", "--budget", "12ms"])
    assert rc == 0
    run = runs / "p"
    assert json.loads((run / "env.json").read_text())["sampler"] == "pick"
    rows = list(csv.DictReader((run / "trials.csv").open()))
    done = [r for r in rows if r["state"] == "COMPLETE"]
    designs = {tuple(r[f"edge_{e}"] for e in ("1_0", "2_0", "2_1", "3_0", "3_1", "3_2")) for r in done}
    assert len(done) == 30 and len(designs) == 30 and len(rows) == 30  # no repeats, no rejections
    assert all(float(r["latency_ms"]) <= 12 for r in done)
    assert json.loads((run / "pareto.json").read_text()) and (run / "report.html").is_file()


def test_pick_kernel_on_nb201_sees_cells_that_compute_the_same(tmp_path: Path, table: Path) -> None:
    """On nb201 the pick GP's kernel is on the ops of the live edges and the input→output paths
    (issue 23, helper 23d): two cells that differ only on an edge no live path uses are the same
    design to it, as are two cut-off cells, while a change on a live edge is not; the one-hot
    (Hamming) kernel saw all three as one choice apart. A table with other columns keeps it."""
    import numpy as np

    from nasl.search.pick import ChoiceGP
    from nasl.search.pickfeatures import NB201_GROUPS
    from nasl.space.table import index

    space = load_space("nb201")
    rows = index(space.spec)
    keys = list(rows)
    gp = ChoiceGP(keys, np.array([r.values["latency_ms"] for r in rows.values()]), names=tuple(space.order))
    assert gp.features is not None and gp.features.groups == NB201_GROUPS
    a = ("nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "none")
    same = a[:2] + ("avg_pool_3x3",) + a[3:]  # edge 2<-1: node 2 reaches the output only via 3<-2 = none
    live = a[:3] + ("nor_conv_1x1",) + a[4:]  # edge 3<-0 is the skip path
    cut1, cut2 = ("none",) * 6, ("skip_connect", "none", "none", "none", "none", "nor_conv_3x3")
    idx = np.array([gp.pos[k] for k in (a, same, live, cut1, cut2)])
    k = gp.features.combine(gp.features.dists(idx, idx), (1.0, 1.0))
    assert k[0, 1] == pytest.approx(1.0) and k[3, 4] == pytest.approx(1.0)
    assert k[0, 2] < 0.9 and k[0, 3] < k[0, 2]
    hp = gp.fit_hp(idx[[0, 2, 3]], np.array([1.0, 0.0, -1.0]))  # weights, ℓ_lat, noise by likelihood
    assert len(hp[0]) == len(NB201_GROUPS) and gp.kern(idx, idx, hp[0], hp[1]).shape == (5, 5)

    mine = index(load_space(_space(tmp_path)).spec)
    plain = ChoiceGP(list(mine), np.array([r.values["latency_ms"] for r in mine.values()]), names=("a", "b"))
    assert plain.features is None  # not NB201's edges: exp(-Hamming/ℓ) as before


def test_pick_is_for_tables_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["search", "mobilenet", "--sampler", "pick", "--trials", "2", "--runs-dir", str(tmp_path),
               "--quiet"])
    _one_line_error(capsys, rc, "--sampler pick", "family: table", "mobilenet")
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_a_tables_default_sampler_follows_its_objectives(tmp_path: Path, table: Path) -> None:
    from nasl.space.schema import table_search_doc

    objs = list(load_space(_space(tmp_path)).objectives)  # accuracy max, latency min
    assert table_search_doc(None, objs) == {"sampler": "pick"}
    assert table_search_doc({"trials": 5}, objs) == {"trials": 5, "sampler": "pick"}
    assert table_search_doc({"sampler": "random"}, objs) == {"sampler": "random"}
    assert table_search_doc(None, [*objs, objs[1]]) == {"sampler": "tpe"}  # pick needs two objectives
