"""``nasl search`` with Optuna: the ask/tell loop over one study, in this process.

In: a :class:`~nasl.search.session.Session`. Out: its :class:`SearchOutcome`. This module only
schedules: it asks Optuna for a candidate, times it when a latency is needed, trains it, and
hands every outcome to the session's :class:`~nasl.search.lifecycle.TrialLog`.
"""

from __future__ import annotations

import time
from typing import Any

from nasl.errors import NaslError
from nasl.search.lifecycle import Candidate
from nasl.search.objective import Stopped
from nasl.search.options import SearchOutcome
from nasl.search.session import Session
from nasl.search.training import train_candidate
from nasl.signals import acknowledge as acknowledge_interrupt
from nasl.signals import check as check_interrupt

INTERRUPTED = "interrupted by the user (Ctrl-C)"


def run_optuna(session: Session) -> SearchOutcome:
    """Run trials one after another until ``--trials`` trained, ``--timeout`` or Ctrl-C."""
    log = session.log
    t0 = time.perf_counter()
    timeout = session.opts.timeout
    deadline = None if timeout is None else t0 + timeout
    log.deadline = None if timeout is None else time.monotonic() + timeout
    interrupted = False
    try:
        while session.trained() < session.trials_target:
            if deadline is not None and time.perf_counter() > deadline:
                log.progress("timeout", {})
                break
            check_interrupt()  # a SIGTERM deferred out of a finalizer stops here
            if log.exhausted:  # only designs evaluated before were proposed lately
                break
            one_trial(session)
            if session.stop_reason:  # e.g. the remote latency target is gone
                log.progress("stopped", {"reason": session.stop_reason})
                break
    except KeyboardInterrupt:
        acknowledge_interrupt()
        interrupted = True
        log.fail_running(INTERRUPTED)
        log.progress("interrupted", {})
    for worker in session.workers:  # the other slots' last trials (nasl.search.workers)
        worker.join()
    log.timings["total"] = time.perf_counter() - t0
    front = session.finish(interrupted)
    log.timings["total"] = time.perf_counter() - t0
    return session.outcome(front, interrupted)


def one_trial(session: Session) -> bool:
    """Ask, evaluate and tell one candidate; True when it went into training."""
    session.prescreen.before_ask()
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
