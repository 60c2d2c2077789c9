"""Run directory: Optuna trials → ``trials.csv``, ``pareto.csv/json``, ``env.json`` (no torch).

In: a run folder and an Optuna study (or its storage URL). Out: the files of DESIGN.md's
run layout, written atomically so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import platform
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna

from nasl.common import record
from nasl.common.errors import NaslError
from nasl.run import verdict
from nasl.stats import shrink
from nasl.stats.pareto import ALIASES, finite, non_dominated

# Columns every trials.csv has; design choices go between BEFORE and AFTER (nasl.common.record).
BEFORE = list(record.BEFORE)
AFTER = list(record.AFTER)
FINAL_LATENCY = record.FINAL_LATENCY


@dataclass(frozen=True)
class RunDir:
    """Paths of one run (``runs/<name>/``)."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    def __truediv__(self, part: str) -> Path:
        return self.root / part

    @property
    def space_yaml(self) -> Path:
        return self.root / "space.yaml"

    @property
    def env_json(self) -> Path:
        return self.root / "env.json"

    @property
    def default_storage(self) -> str:
        return f"sqlite:///{(self.root / 'study.db').resolve()}"

    def read_env(self) -> dict[str, Any]:
        """``env.json`` of an existing run (``NaslError`` if this is not a run folder)."""
        if not self.root.is_dir():
            raise NaslError(f"no run folder {str(self.root)!r}; expected runs/<name> written by "
                            "`nasl search`")
        if not self.env_json.is_file():
            raise NaslError(f"{str(self.root)!r} is not a nasl run: {self.env_json.name} missing")
        try:
            env = json.loads(self.env_json.read_text())
        except json.JSONDecodeError as e:
            raise NaslError(f"{self.env_json}: not valid JSON ({e.msg}, line {e.lineno})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise NaslError(f"{self.env_json}: cannot read it ({e})") from None
        if not isinstance(env, dict):
            raise NaslError(f"{self.env_json}: a JSON {type(env).__name__}; expected an object "
                            "as written by `nasl search`")
        return env


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a result."""
    out = {"python": platform.python_version()}
    for pkg in ("nasl", "torch", "optuna", "ray", "wandb", "thop", "numpy", "onnxruntime"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def environment(seed: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What env.json records: versions, machine, command line, seed, plus ``extra``."""
    return {
        "versions": versions(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "node": platform.node()},
        "command": " ".join(sys.argv),
        "seed": seed,
        **(extra or {}),
    }


# ------------------------------------------------------------------------------- trial rows
def trial_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """One trials.csv row from a finished (or running) trial's user attributes."""
    ua = t.user_attrs
    # a candidate rejected by a budget is told to Optuna as COMPLETE (with its constraints);
    # trials.csv says what it is
    state = "INFEASIBLE" if t.state.name == "COMPLETE" and ua.get("feasible") is False \
        else t.state.name
    if state == "COMPLETE" and ua.get("repeat_of") is not None:
        state = "REPEAT"  # a tabular space's design proposed again: told its values, not evaluated
    rec = record.TrialRecord.from_trial(t)
    row: dict[str, Any] = {"number": t.number, "state": state, "baseline": rec.baseline or ""}
    row.update(rec.choices or {})
    stored = rec.__dict__
    row.update({key: stored[key] for key in AFTER})  # derived ones are None until filled in
    if t.state == optuna.trial.TrialState.RUNNING:
        row["reason"] = row["reason"] or "running"
    row["feasible"] = bool(ua.get("feasible", False))
    row["pareto"] = False
    return row


def front(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]],
          budgets: Mapping[str, float] | None = None) -> list[int]:
    """Indices of the front among ``rows``: the non-dominated COMPLETE, feasible rows that have
    every objective (the one definition trials.csv, pareto.*, the report and the confirmation
    use). Rows read back from a CSV work too: the state is normalised, and a row without a
    ``feasible`` flag is feasible when its values are within ``budgets``."""
    names = [ALIASES.get(m, m) for m, _ in objectives]

    def feasible(r: Mapping[str, Any]) -> bool:
        if isinstance(r.get("feasible"), bool):
            return bool(r["feasible"])
        return all((finite(r.get(ALIASES.get(k, k))) or 0.0) <= v for k, v in (budgets or {}).items())

    pool = [i for i, r in enumerate(rows)
            if str(r.get("state") or "").rsplit(".", 1)[-1].upper() == "COMPLETE" and feasible(r)
            and all(finite(r.get(n)) is not None for n in names)]
    points = [[float(finite(rows[i].get(n)) or 0.0) for n in names] for i in pool]
    return [pool[j] for j in non_dominated(points, [d for _, d in objectives])]


def mark_front(rows: list[dict[str, Any]], objectives: Sequence[tuple[str, str]]) -> list[int]:
    """Set ``pareto`` on the rows of the :func:`front`; return their indices."""
    idx = front(rows, objectives)
    for i in idx:
        rows[i]["pareto"] = True
    return idx


def pooled_seed_std(rows: list[dict[str, Any]]) -> float | None:
    """The run's pooled seed standard deviation of accuracy (None before any design has two
    seeds)."""
    from nasl.stats.confidence import pooled_std

    sd = pooled_std([verdict.seed_values(r) for r in rows if r.get("state") == "COMPLETE"])
    return sd if sd == sd else None


def columns(rows: list[dict[str, Any]], choice_names: Sequence[str]) -> list[str]:
    """Column order: number, state, baseline, design choices, costs and outcome."""
    return BEFORE + [c for c in choice_names if c not in BEFORE + AFTER] + AFTER


def to_csv(rows: list[dict[str, Any]], cols: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(cols), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in cols})
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def write_tables(run: RunDir, rows: list[dict[str, Any]], choice_names: Sequence[str],
                 objectives: Sequence[tuple[str, str]],
                 answer: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Write trials.csv, pareto.csv and pareto.json (the run's ``answer`` first, when the
    confirmation made one); return the front rows (best accuracy first)."""
    mark_front(rows, objectives)
    conf = verdict.front_verdict(rows, objectives)
    cols = columns(rows, choice_names)
    write_text_atomic(run / "trials.csv", to_csv(rows, cols))
    front = [r for r in rows if r["pareto"]]
    first = objectives[0][0]
    reverse = dict(objectives)[first] == "maximize"
    front.sort(key=lambda r: (r[first] is None, r[first]), reverse=reverse)
    write_text_atomic(run / "pareto.csv", to_csv(front, cols))
    write_text_atomic(run / "pareto.json", json.dumps(
        {"answer": answer, "objectives": [{"metric": m, "direction": d} for m, d in objectives],
         "trials": [{k: r.get(k) for k in cols} for r in front],
         "confidence": conf, "pooled_seed_std": pooled_seed_std(rows),
         "accuracy_expected": shrink.RULE if any(r.get("accuracy_expected") is not None
                                                 for r in rows) else None},
        indent=2, default=str))
    return front


def _first_recipe(store: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first — the run's — recipe of the ``decide`` attribute, its designs with at least
    one accuracy as trial number → Sample)."""
    from nasl.decide.stats import Sample

    first = next(iter(store.values()), {}) if store else {}
    return first, {n: Sample(tuple(d["accuracies"])) for n, d in first.get("designs", {}).items()
                   if d.get("accuracies")}


def confirmation_sd(store: dict[str, Any]) -> float | None:
    """The pooled seed std of the first (the run's) recipe of the ``decide`` attribute: the
    confirmation's fresh seeds at its fidelity (None before any design has two)."""
    from nasl.decide.stats import pooled

    sd = pooled(list(_first_recipe(store)[1].values()))[0]
    return sd if sd == sd else None


def add_expected(rows: list[dict[str, Any]], confirmation_sd: float | None = None
                 ) -> dict[str, Any] | None:
    """Fill ``accuracy_expected`` (:mod:`nasl.stats.shrink`) on the trained rows within budget,
    with the run's pooled seed std at the search fidelity, else ``confirmation_sd`` (the
    confirmation's, a stand-in); → the rule and its numbers for pareto.json (None: no estimate)."""
    done = [r for r in rows if r.get("state") == "COMPLETE" and r.get("feasible") is not False
            and isinstance(r.get("accuracy"), (int, float)) and math.isfinite(r["accuracy"])
            and (r.get("macs") or 0) > 0]
    sd, source = pooled_seed_std(rows), "designs trained with several seeds at the search fidelity"
    if sd is None and confirmation_sd is not None:
        sd, source = confirmation_sd, "the confirmation's fresh seeds (a stand-in)"
    est = None if sd is None else shrink.expected(
        [r["accuracy"] for r in done], [r["macs"] for r in done],
        [int(r.get("n_seeds") or 1) for r in done], sd)
    if est is None:
        return None
    for r, v in zip(done, est.values, strict=True):
        r.update(record.TrialRecord.columns(accuracy_expected=v))
    return {**est.to_dict(), "seed_sd_from": source, "designs": len(done)}


def confirmed_stats(store: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Trial number → the ``confirmed_*`` row fields of the first (the run's) recipe of the
    ``decide`` attribute: mean, 95 % t-interval with the pooled seed std, seeds, epochs."""
    if not store:
        return {}
    from nasl.decide.stats import interval, pooled

    first, designs = _first_recipe(store)
    sd, dof = pooled(list(designs.values()))
    out = {}
    for n, s in designs.items():
        low, high = interval(s, sd, dof)
        out[n] = record.TrialRecord.columns(
            confirmed_accuracy=s.mean, confirmed_seeds=s.n,
            confirmed_low=low if low == low else None,
            confirmed_high=high if high == high else None, confirmed_epochs=first.get("epochs"))
    return out


def load_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """All trials of the study as rows (in trial-number order), with the final re-timings and
    the confirmation seeds applied and the seed statistics filled in (nasl.run.verdict)."""
    attrs = study.user_attrs
    final, confirm = attrs.get(FINAL_LATENCY, {}), attrs.get(record.CONFIRM, {})
    decided = confirmed_stats(attrs.get(record.DECIDE, {}))
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = trial_row(t)
        row.update({k: v for k, v in final.get(str(t.number), {}).items() if k in row})
        extra = confirm.get(str(t.number), {}).get("accuracies", [])
        if t.state == optuna.trial.TrialState.COMPLETE and row.get("feasible"):
            row["accuracy_seeds"] = verdict.seed_values(row) + [float(a) for a in extra]
        row.update(decided.get(str(t.number), {}))
        rows.append(row)
    verdict.add_seed_stats(rows)
    add_expected(rows, confirmation_sd(attrs.get(record.DECIDE, {})))
    return rows


# ------------------------------------------------------------------------------- a run's study
@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's logging at WARNING inside the block; the caller's verbosity is restored."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def open_run_study(run: RunDir) -> tuple[optuna.Study, dict[str, Any]]:
    """The run's Optuna study and env.json (``NaslError`` if either is missing)."""
    from nasl.common import guards

    env = run.read_env()
    missing = [k for k in ("study", "storage", "objectives") if not env.get(k)]
    if missing:
        raise NaslError(f"{run.env_json}: keys {missing} missing; expected env.json as written by "
                        "`nasl search`")
    # a relative sqlite:///study.db is the run folder's own (the folder may have moved)
    env["storage"] = guards.resolved_storage(str(env["storage"]), run.root)
    guards.check_sqlite_file(env["storage"], str(run.root))
    try:
        with quiet_optuna():
            study = optuna.load_study(study_name=str(env["study"]), storage=env["storage"])
    except KeyError:
        raise NaslError(f"{run.root}: study {env.get('study')!r} not found in "
                        f"{env.get('storage')}") from None
    except Exception as e:  # a damaged database or an unreachable server
        if isinstance(e, NaslError):
            raise
        raise NaslError(f"{run.root}: cannot read the study in {env['storage']} "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
                        ) from None
    return study, env


def load_run(run: RunDir | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (with the front marked) and env.json of a run."""
    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    study, env = open_run_study(run)
    rows = load_rows(study)
    objectives = [(str(m), str(d)) for m, d in env["objectives"]]
    mark_front(rows, objectives)
    verdict.front_verdict(rows, objectives)
    env["answer"] = study.user_attrs.get(record.ANSWER)  # the run's answer (None before it)
    return rows, env
