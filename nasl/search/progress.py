"""Live progress of a search: one line per finished trial, and word of the stages after it.

In: the typed events of :mod:`nasl.common.events` (trial started, epoch ended, trial ended, stage
progress, front written). Out: lines on stderr such as::

    trial 7/20 · #12 g=3 w=0.5 r=192 · 31.2 M MACs · 83.1 % in 6 s · ~1 min 40 s left
    confirm 2/6 · #12 seed 1000012 · ~40 s left

In a terminal a rich bar (trials done/target, rejected, pruned, failed, front, best) sits
under the lines; when stderr is not a terminal (a log file, CI) the lines are plain text, no
bar and no boxes, and a heartbeat line says what is running whenever nothing was printed for
:data:`HEARTBEAT_S` seconds (the confirmation and re-timing stages, long trials).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nasl.common.events import EpochEnded, FrontWritten, Listener, StageProgress, TrialEnded, TrialStarted

#: Longest silence in a plain log before a heartbeat line, in seconds.
HEARTBEAT_S = 15.0
#: Short names of common design choices in a trial line (others keep their name).
SHORT = {"groups": "g", "width_mult": "w", "resolution_mult": "ρ", "resolution": "r",
         "squeeze_ratio": "sr", "pct3x3": "p3", "middle_blocks": "mid", "shuffle": "shuffle"}
MAX_DESIGN = 48


def duration(seconds: float) -> str:
    """``6 s``, ``1 min 40 s``, ``2 h 5 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def macs_text(n: float | None) -> str:
    """``31.2 M MACs`` (``-`` when unknown)."""
    if n is None:
        return "- MACs"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit} MACs"
    return f"{n:.0f} MACs"


def design_text(params: dict[str, Any]) -> str:
    """A design's choices in a few characters: ``g=3 w=0.5 r=192 rep=4/8/4``."""
    parts: list[str] = []
    lists: dict[str, list[str]] = {}
    for key, value in params.items():
        if "[" in key:  # stage_repeats[0] ... → one entry
            base = key.split("[", 1)[0]
            lists.setdefault(base, []).append(str(value))
            continue
        if isinstance(value, bool):
            parts.append(SHORT.get(key, key) if value else f"no-{SHORT.get(key, key)}")
            continue
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif isinstance(value, list | tuple):
            value = "/".join(str(v) for v in value)
        parts.append(f"{SHORT.get(key, key)}={value}")
    for base, values in lists.items():
        parts.append(f"{'rep' if base == 'stage_repeats' else base}={'/'.join(values)}")
    text = " ".join(parts)
    return text if len(text) <= MAX_DESIGN else text[: MAX_DESIGN - 1] + "…"


class SearchProgress(Listener):
    """Callable progress sink; use as a context manager around the search.

    Args:
        total: trained trials wanted in all. done: those trained before (``--resume``).
        console: where to write (default: stderr). enabled: False prints nothing.
        plain: plain lines and no bar (default: when the console is not a terminal).
        heartbeat: seconds of silence before a heartbeat line in plain mode (None: off).
    """

    def __init__(self, total: int, done: int = 0, console: Console | None = None,
                 enabled: bool = True, plain: bool | None = None,
                 heartbeat: float | None = HEARTBEAT_S):
        self.console = console or Console(stderr=True, log_path=False)
        self.enabled = enabled
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self.total, self.done, self.done_at_start = total, done, done
        self.rejected = self.pruned = self.failed = 0
        self.best: float | None = None
        self.front_size = 0
        self.current = ""
        self.trials: dict[int, dict[str, Any]] = {}  # number → params, macs, baseline
        self.t0 = time.monotonic()
        self.stage_state: dict[str, Any] = {}  # confirm / remeasure: name, started, count
        self.last_line = time.monotonic()
        self.lock = threading.Lock()
        self.heartbeat = heartbeat if (enabled and self.plain) else None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.bar = Progress(
            TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console,
            disable=not enabled or self.plain, transient=False)
        self.task = self.bar.add_task("search", total=total, completed=done, info="")

    # ------------------------------------------------------------------ lifetime
    def __enter__(self) -> SearchProgress:
        self.bar.__enter__()
        if self.heartbeat:
            self.thread = threading.Thread(target=self._beat, name="nasl-progress", daemon=True)
            self.thread.start()
        left = self.total - self.done
        if self.done:
            self.say(f"search: {left} more trials to train ({self.done} of {self.total} done)")
        else:
            self.say(f"search: {self.total} trials to train")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=2)
        self.bar.__exit__(*exc)

    def say(self, line: str) -> None:
        """Print one line (above the bar in a terminal)."""
        if not self.enabled:
            return
        with self.lock:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)
            self.last_line = time.monotonic()

    def _beat(self) -> None:
        assert self.heartbeat is not None
        while not self.stop.wait(min(1.0, self.heartbeat)):
            self.beat(time.monotonic())

    def beat(self, now: float) -> bool:
        """Print what is running if nothing was printed for ``heartbeat`` seconds → printed?"""
        if self.heartbeat is None or now - self.last_line < self.heartbeat or not self.current:
            return False
        st = self.stage_state
        self.say(f"  … {self.current} ({duration(now - st.get('step', st.get('since', self.t0)))} so far)")
        return True

    # ------------------------------------------------------------------ text
    def _info(self) -> str:
        best = "-" if self.best is None else f"{self.best:.1%}"
        return (f"rejected {self.rejected} · pruned {self.pruned} · failed {self.failed} · "
                f"front {self.front_size} · best {best}  {self.current}")

    def _left(self) -> str:
        """Estimated time to the last trial, from this session's pace."""
        finished = self.done - self.done_at_start
        if finished <= 0 or self.done >= self.total:
            return ""
        per = (time.monotonic() - self.t0) / finished
        return f" · ~{duration(per * (self.total - self.done))} left"

    def _head(self, n: Any) -> str:
        t = self.trials.get(n, {})
        star = f" ★{t['baseline']}" if t.get("baseline") else ""
        design = design_text(t.get("params") or {})
        return (f"trial {self.done}/{self.total} · #{n}{star}{' ' + design if design else ''} · "
                f"{macs_text(t.get('macs'))}")

    def _stage_line(self, kind: str, e: StageProgress) -> str:
        """A line for one step of the confirmation or re-timing stage."""
        if self.stage_state.get("kind") != kind:
            self.stage_state = {"kind": kind, "since": time.monotonic(), "count": 0}
            self.say("confirmation: the designs that can change the answer, fresh seeds at higher "
                     "fidelity, scored on the holdout" if kind == "confirm" else
                     "re-timing: the front and the confirmed designs, in interleaved rounds")
        st = self.stage_state
        st["count"] += 1
        done, total = e.done, e.total
        if (e.recipe != st.get("recipe") or isinstance(done, int) and done < st.get("last", -1)):
            # a new recipe's (or a new plan's) count starts again: so does its pace
            st["since"], st["recipe"] = time.monotonic(), e.recipe
        if isinstance(done, int):
            st["last"] = done
        st["step"] = time.monotonic()  # the heartbeat's "so far" counts this step
        step = f"{done + 1}/{total}" if isinstance(done, int) and total else f"step {st['count']}"
        what = f"#{e.number}"
        if kind == "confirm":
            if e.seed is not None:
                what += f" seed {e.seed}"
            if e.epochs:
                what += f" · {e.epochs} epochs"
            if e.recipe:
                what += f" · {e.recipe}"
        left = ""
        if isinstance(done, int) and total and done > 0:
            per = (time.monotonic() - st["since"]) / done
            left = f" · ~{duration(per * (total - done))} left"
        verb = "confirm" if kind == "confirm" else "re-time"
        self.current = f"{verb} {step} {what}"
        return f"{verb} {step} · {what}{left}"

    # ------------------------------------------------------------------ events
    def trial_started(self, e: TrialStarted) -> None:
        self.trials[e.number] = {"params": dict(e.choices), "macs": e.record.get("macs"),
                                 "baseline": e.baseline, "epochs": e.epochs}
        self.stage_state = {"since": time.monotonic()}
        self.current = (f"trial #{e.number} training: {design_text(dict(e.choices))}, "
                        f"{macs_text(e.record.get('macs'))}")
        self.bar.update(self.task, info=self._info())

    def epoch_ended(self, e: EpochEnded) -> None:
        epochs = self.trials.get(e.number, {}).get("epochs")
        self.current = (f"trial #{e.number}: epoch {e.epoch}{'/' + str(epochs) if epochs else ''}"
                        f" {100 * e.accuracy:.1f} %")
        self.bar.update(self.task, info=self._info())

    def trial_ended(self, e: TrialEnded) -> None:
        if e.state == "rejected":
            self.rejected += 1
            self.bar.update(self.task, info=self._info())
            return
        self.done += 1
        if e.state == "complete":
            acc = float(e.accuracy or 0.0)
            self.best = acc if self.best is None else max(self.best, acc)
            tail = f"{100 * acc:.1f} % in {duration(e.seconds or 0)}"
        elif e.state == "pruned":
            self.pruned += 1
            tail = f"stopped: {e.reason}"
        else:
            self.failed += 1
            tail = f"failed: {e.reason}"
        self.current = ""
        self.say(f"{self._head(e.number)} · {tail}{self._left()}")
        self.bar.update(self.task, completed=self.done, info=self._info())

    def stage(self, e: StageProgress) -> None:
        if e.stage in ("confirm", "remeasure"):
            self.say(self._stage_line(e.stage, e))
        elif e.stage == "packing" and e.reason:
            self.say(e.reason)
        elif e.stage == "prescreen" and e.reason:
            self.say(f"pre-screen {'on' if e.on else 'off'}: {e.reason}")
        elif e.stage in ("timeout", "interrupted", "exhausted"):
            self.say(f"{e.stage}: finishing and writing the outputs")
        self.bar.update(self.task, info=self._info())

    def front_written(self, e: FrontWritten) -> None:
        self.front_size = e.size
        if e.final:
            self.current = ""
        self.bar.update(self.task, info=self._info())
