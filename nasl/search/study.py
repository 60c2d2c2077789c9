"""Optuna study plumbing: samplers by name, storage, recording a trial's outcome.

In: run options. Out: a multi-objective ``optuna.Study`` whose trials carry everything
``trials.csv`` needs as user attributes (so any tool reading the storage sees it all).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nasl.common.errors import NaslError
from nasl.common.vocab import SAMPLERS, TRAINED_STATES
from nasl.run.results import quiet_optuna

# Value told to Optuna for a metric never measured (infeasible trials are not trained and
# may not be timed); the trial is infeasible through its constraint, so it never reaches
# a front. trials.csv shows the real, empty value.
UNMEASURED = {"accuracy": 0.0, "latency_ms": 1e6}


def make_sampler(name: str, seed: int, *, n_startup: int = 10) -> optuna.samplers.BaseSampler:
    """The sampler called ``name`` (see :data:`SAMPLERS`), seeded."""
    if name in ("tpe", "pick"):  # pick: TPE here; nasl.search.pick enqueues its choices
        with warnings.catch_warnings():  # multivariate/group/constant_liar are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                              constant_liar=True, n_startup_trials=n_startup)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(8, n_startup))
    if name == "nsga3":
        return optuna.samplers.NSGAIIISampler(seed=seed, population_size=max(8, n_startup))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise NaslError(f"--sampler {name!r}: expected one of {', '.join(SAMPLERS)}")


def open_study(storage: str, name: str, directions: Sequence[str], sampler: Any, *,
               resume: bool, metrics: Sequence[str] | None = None) -> optuna.Study:
    """Create the study, or load it when ``resume`` (its directions must match); a new study
    carries its objective names (``metrics``) so optuna-dashboard labels its axes."""
    with quiet_optuna():
        study = _open_study(storage, name, directions, sampler, resume=resume)
        if metrics and not resume:
            with warnings.catch_warnings():  # set_metric_names is "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(metrics))
        return study


def _open_study(storage: str, name: str, directions: Sequence[str], sampler: Any, *,
                resume: bool) -> optuna.Study:
    try:
        if resume:
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
            if [d.name.lower() for d in study.directions] != list(directions):
                raise NaslError(f"study {name!r} in {storage} optimises "
                                f"{[d.name.lower() for d in study.directions]}, not {list(directions)}")
            return study
        return optuna.create_study(study_name=name, storage=storage, directions=list(directions),
                                   sampler=sampler, load_if_exists=False)
    except optuna.exceptions.DuplicatedStudyError:
        raise NaslError(f"study {name!r} already exists in {storage}; pass --resume to continue "
                        "it or --name to start another") from None
    except KeyError:
        raise NaslError(f"no study {name!r} in {storage} to resume") from None
    except (NaslError, KeyboardInterrupt):
        raise
    except Exception as e:  # storage unreachable, damaged, or created at the same moment
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise NaslError(f"cannot open study {name!r} in {storage} ({type(e).__name__}: {first})"
                        ) from None


def trained_count(study: optuna.Study) -> int:
    """Trials that went into training (complete and feasible, pruned, or failed in training)."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.user_attrs.get("trained") and t.state.name in TRAINED_STATES)


def owner() -> str:
    """``host:pid:start`` of this process (``start``: its start time in clock ticks since boot,
    so a recycled pid is told apart), recorded on the trials it runs."""
    from nasl.common.owners import owner_id

    return owner_id()


def _alive(owner_id: str | None, last_seen: float | None = None) -> bool:
    """Whether the process that owns a RUNNING trial may still be running it (see
    :func:`nasl.common.owners.alive`: same host: that pid with that start time; another host: a sign
    of life within the lease)."""
    from nasl.common.owners import alive

    return alive(owner_id, last_seen)


def fail_interrupted(study: optuna.Study) -> list[FrozenTrial]:
    """Mark trials left RUNNING by a dead process (crash, ``kill -9``) as FAIL; return them.

    Trials of live processes (another ``nasl search`` on a shared ``--storage``, or one on
    another machine) are left alone.
    """
    from nasl.common.owners import last_seen

    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
             if not _alive(t.user_attrs.get("owner"), last_seen(t))]
    for t in stale:
        fail_trial(study, t, "interrupted: the process ended during this trial")
    return stale


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Mark a RUNNING trial (of any process) FAIL with ``reason``, not counted as trained
    (its design is queued again by the caller and ``--trials`` stays the total)."""
    study._storage.set_trial_user_attr(trial._trial_id, "reason", reason)
    study._storage.set_trial_user_attr(trial._trial_id, "trained", False)
    if "feasible" not in trial.user_attrs:  # interrupted, not rejected: counted as failed
        study._storage.set_trial_user_attr(trial._trial_id, "feasible", True)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def frozen(study: optuna.Study, trial: Any) -> FrozenTrial:
    """The stored (frozen) state of a live ``optuna.Trial`` of ``study``."""
    return study._storage.get_trial(trial._trial_id)


def storage_of(study: optuna.Study) -> Any:
    """The storage object of ``study`` (to share it with Ray's ``OptunaSearch``)."""
    return study._storage


def values_for(objectives: Sequence[tuple[str, str]], rec: dict[str, Any]) -> list[float]:
    """Objective values of a record, with :data:`UNMEASURED` for what was never measured."""
    out = []
    for m, _ in objectives:
        v = rec.get(m)
        out.append(float(v) if v is not None and math.isfinite(float(v)) else UNMEASURED.get(m, 0.0))
    return out
