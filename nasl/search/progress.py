"""Live progress of a search in the terminal (rich): one bar, one line per finished trial.

In: events from :class:`nasl.search.run.Search` (``start``, ``epoch``, ``complete``,
``pruned``, ``fail``, ``rejected``, ...). Out: a display of trials done/target, infeasible
rejected, pruned, failed, ETA, front size and best accuracy under budget.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _short(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


class SearchProgress:
    """Callable progress sink; use as a context manager around the search loop."""

    def __init__(self, total: int, done: int = 0, console: Console | None = None,
                 enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.total, self.done = total, done
        self.rejected = self.pruned = self.failed = 0
        self.best: float | None = None
        self.front_size = 0
        self.current = ""
        self.bar = Progress(
            TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=self.console, disable=not enabled, transient=False)
        self.task = self.bar.add_task("search", total=total, completed=done, info="")

    def __enter__(self) -> SearchProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def _info(self) -> str:
        best = "-" if self.best is None else f"{self.best:.1%}"
        return (f"rejected {self.rejected} · pruned {self.pruned} · failed {self.failed} · "
                f"front {self.front_size} · best {best}  {self.current}")

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        n = info.get("number")
        if event == "start":
            base = f" [{info['baseline']}]" if info.get("baseline") else ""
            self.current = f"trial {n}{base}: {_short(info.get('macs', 0))} MACs"
        elif event == "epoch":
            self.current = (f"trial {n}: epoch {info['epoch']} acc {info['accuracy']:.1%}")
        elif event in ("complete", "pruned", "fail"):
            self.done += 1
            if event == "complete":
                acc = info["accuracy"]
                self.best = acc if self.best is None else max(self.best, acc)
                msg = f"trial {n}: {acc:.1%} in {info['seconds']:.1f}s"
            elif event == "pruned":
                self.pruned += 1
                msg = f"trial {n}: stopped — {info['reason']}"
            else:
                self.failed += 1
                msg = f"trial {n}: failed — {info['reason']}"
            if self.enabled:
                self.console.log(msg)
            self.bar.update(self.task, completed=self.done)
        elif event == "rejected":
            self.rejected += 1
        elif event == "front":
            self.front_size = info["size"]
        elif event == "remeasure":
            self.current = f"re-timing front member {n}"
        elif event in ("timeout", "interrupted", "exhausted") and self.enabled:
            self.console.log(f"{event}: finishing and writing the outputs")
        self.bar.update(self.task, info=self._info())
