"""Who runs a trial, and whether that process can still be running it.

A RUNNING trial carries ``owner`` = ``host:pid:start`` (``start``: the process's start time in
clock ticks since boot, from ``/proc/<pid>/stat``) and, while it trains, a ``heartbeat``
(Unix time, refreshed at most every :data:`HEARTBEAT_EVERY_S`). A trial left RUNNING by a
process that died (``kill -9``, a lost machine) is recognised as stale when:

* same host: no process has that pid, or the pid now belongs to a process started at another
  time (pids are recycled);
* another host (a different machine, or this container renamed): no sign of life (start or
  heartbeat) for :func:`lease_s` seconds (``NASL_TRIAL_LEASE_S``, default 1800).

In: owner strings and trial timestamps. Out: ``owner_id()``, ``alive(...)``, ``last_seen(...)``
and :class:`Heartbeat`, a progress listener that records the heartbeat.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from nasl.common.events import EpochEnded, Listener, TrialStarted

#: Seconds between two heartbeats of one trial (one storage write each).
HEARTBEAT_EVERY_S = 60.0
#: Default lease of a trial of another host without a sign of life.
DEFAULT_LEASE_S = 1800.0


def process_start(pid: int) -> str | None:
    """Start time of process ``pid`` (clock ticks since boot) or None if unknown/absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5), after pid and comm


def owner_id() -> str:
    """``host:pid:start`` of this process."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or ''}"


def lease_s() -> float:
    """The lease of another host's trial (``NASL_TRIAL_LEASE_S``, default 1800 s)."""
    try:
        return max(1.0, float(os.environ.get("NASL_TRIAL_LEASE_S", DEFAULT_LEASE_S)))
    except ValueError:
        return DEFAULT_LEASE_S


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


#: A RUNNING trial with no owner yet is someone's fresh ask for this long (seconds).
UNOWNED_GRACE_S = 120.0


def alive(owner: str | None, last_seen: float | None = None, now: float | None = None) -> bool:
    """Whether the owner of a RUNNING trial may still be running it (see the module doc).

    ``owner``: ``host:pid:start`` (or the older ``host:pid``); ``last_seen``: Unix time of the
    trial's last sign of life (start or heartbeat), used for other hosts.
    """
    if not owner or not isinstance(owner, str):
        # asked a moment ago by a process that has not recorded itself yet: not stale
        return last_seen is not None and (time.time() if now is None else now) - last_seen < \
            UNOWNED_GRACE_S
    parts = owner.split(":")
    if len(parts) == 3:
        host, pid_s, start = parts
    elif len(parts) == 2:
        host, pid_s, start = parts[0], parts[1], ""
    else:
        return False
    if host != socket.gethostname():
        if last_seen is None:
            return False
        return (time.time() if now is None else now) - last_seen < lease_s()
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    if pid <= 0 or not _pid_alive(pid):
        return False
    return not start or process_start(pid) in (None, start)


def last_seen(trial: Any) -> float | None:
    """Unix time of a trial's last sign of life: its ``heartbeat`` attribute or its start."""
    times = []
    hb = trial.user_attrs.get("heartbeat")
    if isinstance(hb, (int, float)):
        times.append(float(hb))
    if getattr(trial, "datetime_start", None) is not None:
        times.append(trial.datetime_start.timestamp())
    return max(times) if times else None


class Heartbeat(Listener):
    """Progress listener: when a trial starts and after each epoch, store ``heartbeat`` (Unix
    time) on the trial, at most every :data:`HEARTBEAT_EVERY_S` per trial. Never raises."""

    def __init__(self, study: Any, every_s: float = HEARTBEAT_EVERY_S):
        self.study, self.every_s = study, every_s
        self._last: dict[int, float] = {}

    def trial_started(self, event: TrialStarted) -> None:
        self.beat(event.number)

    def epoch_ended(self, event: EpochEnded) -> None:
        self.beat(event.number)

    def beat(self, number: int) -> None:
        """Store the heartbeat of trial ``number`` unless one was stored lately."""
        now = time.time()
        if now - self._last.get(number, 0.0) < self.every_s:
            return
        self._last[number] = now
        try:
            storage = self.study._storage
            tid = storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)
            storage.set_trial_user_attr(tid, "heartbeat", now)
        except Exception:  # a heartbeat must never stop a search
            pass
