"""One Optuna trial in this process: ask, cost, time, train, tell.

In: a :class:`~nasl.search.session.Session`. Out: one trial told to its study through the
session's :class:`~nasl.search.lifecycle.TrialLog`. The Optuna backends
(:mod:`nasl.search.backends`) and the worker processes (:mod:`nasl.search.workers`) call
:func:`one_trial` in a loop.
"""

from __future__ import annotations

import time
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.events import StageProgress
from nasl.search.lifecycle import Candidate
from nasl.search.objective import Stopped
from nasl.search.session import Session
from nasl.search.training import train_candidate

INTERRUPTED = "interrupted by the user (Ctrl-C)"


def keep_going(session: Session) -> bool:
    """False (with the stage event) once the deadline passed, the sampler only repeats designs
    or the session says stop; else True. Every backend asks this before each new trial."""
    log = session.log
    if session.past_deadline():
        log.progress(StageProgress("timeout"))
        return False
    if log.exhausted:  # only designs evaluated before were proposed lately
        return False
    if session.stop_reason:  # e.g. the remote latency target is gone
        log.progress(StageProgress("stopped", reason=session.stop_reason))
        return False
    return session.trained() < session.trials_target


def one_trial(session: Session) -> bool:
    """Ask, evaluate and tell one candidate; True when it went into training."""
    session.prescreen.before_ask()
    if session.proposer is not None:  # --sampler pick: the next design is enqueued
        session.proposer.before_ask(session.study)
    log, trial = session.log, session.study.ask()
    cand = log.propose(trial)
    if not cand.over and session.skip_repeats:  # tabular: a repeat would look up the same row
        prev = log.repeat_of(cand.params)
        if prev is not None:
            log.repeat(trial, cand, prev)
            return False
    if not cand.over and session.settings.needs_latency:
        from nasl.latency.remote import RemoteRefused, RemoteUnavailable

        t = time.perf_counter()
        try:
            lat = session.evaluator.latency(session.space.to_arch(cand.params))
        except (RemoteUnavailable, RemoteRefused) as e:
            session.latency_failed(trial, cand, e)
            return False
        log.add_latency(cand, lat, time.perf_counter() - t)
    if cand.over:
        log.reject(trial, cand.rec, cand.over, cand.reason)
        return False
    _train(session, trial, cand)
    return True


def _train(session: Session, trial: Any, cand: Candidate) -> None:
    log = session.log
    log.start(trial, cand)
    costs = log.costs_of(cand.rec)
    curve: list[float] = []

    def on_epoch(ep: Any) -> None:
        curve.append(float(ep.val_accuracy))  # stored once, when the trial ends
        why = log.epoch(trial, ep.epoch, float(ep.val_accuracy), float(ep.train_loss), costs)
        if why:
            raise Stopped(why, ep.epoch)

    t = time.perf_counter()
    try:
        outcome = train_candidate(session.evaluator, cand.params, cand.seed,
                                  session.settings.seeds, on_epoch)
    except Stopped as e:
        log.stop(trial, "PRUNED", curve, e.reason, seconds=time.perf_counter() - t)
        return
    except KeyboardInterrupt:
        log.stop(trial, "FAIL", curve, INTERRUPTED, seconds=time.perf_counter() - t, requeue=True)
        raise
    except NaslError:
        raise
    except Exception as e:  # a failed trial never stops the search
        log.stop(trial, "FAIL", curve, f"{type(e).__name__}: {e}"[:500],
                 seconds=time.perf_counter() - t)
        return
    log.complete(trial, cand.rec, curve, outcome)
