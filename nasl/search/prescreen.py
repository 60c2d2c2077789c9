"""Zero-cost pre-screening inside a search: sample N feasible designs, train the one the proxy
ranks best, but only while the proxy has earned it on this run's own trials.

In: a :class:`~nasl.search.session.Session` (its completed trials, space, data) and the
options ``prescreen`` (N candidates per trained trial, 0 = off) and ``prescreen_proxy``.
Out: before each trial, the chosen design queued in the study (so Optuna's ask returns it,
in both backends), and the on/off decision with the correlations behind it in env.json
(``prescreen``) and in report.html. The rule is :func:`nasl.zerocost.prescreen.decide`:
on only when the proxy's Spearman with accuracy beats params' and MACs' by the margin and
in 90 % of paired bootstrap resamples, over at least ten completed trials.
"""

from __future__ import annotations

from typing import Any

from nasl.common.errors import NaslError
from nasl.common.events import StageProgress
from nasl.common.vocab import STATIC_METRICS
from nasl.search.objective import static_costs, violations

#: Completed trials between two decisions (the first comes at the decision's minimum).
REDECIDE_EVERY = 5


def proxy_names(proxy: str) -> tuple[str, ...]:
    """The proxies a pre-screen with ``proxy`` scores: all defaults for ``auto``, else that one.
    Raises NaslError (one line, naming the flag) for an unknown name."""
    from nasl.zerocost.measures import ALL_PROXIES, PROXIES

    if proxy == "auto":
        return PROXIES
    if proxy not in ALL_PROXIES:
        raise NaslError(f"--prescreen-proxy {proxy!r}: expected auto or one of "
                        f"{', '.join(ALL_PROXIES)}")
    return (proxy,)


class PreScreen:
    """Keeps proxy scores of completed trials, decides on/off, and queues the chosen design."""

    def __init__(self, session: Any, n: int, proxy: str):
        self.session, self.n, self.proxy = session, n, proxy
        self.names = proxy_names(proxy)  # auto: every default proxy (decide_auto picks one)
        self.scores: dict[int, dict[str, float]] = {}
        self.decision: Any = None
        self.decided_at = -1
        self.picks = 0

    def _score(self, params: dict[str, Any]) -> dict[str, float]:
        from nasl.zerocost.prescreen import score_design

        return score_design(self.session.space, params, self.session.evaluator.data, self.names,
                            seed=self.session.settings.seed)

    def decide(self, force: bool = False) -> Any:
        """Re-decide on the completed trials when enough new ones finished (or ``force``)
        → the decision."""
        from nasl.zerocost.prescreen import DEFAULT_MIN_TRIALS, decide, decide_auto

        done = [t for t in self.session.study.get_trials(deepcopy=False)
                if t.state.name == "COMPLETE" and t.user_attrs.get("feasible")
                and t.user_attrs.get("accuracy") is not None]
        n = len(done)
        if not force and self.decision is not None and (
                n < self.decided_at + REDECIDE_EVERY or n < DEFAULT_MIN_TRIALS):
            return self.decision
        for t in done:
            if t.number not in self.scores:
                self.scores[t.number] = self._score(t.user_attrs["choices"])
        scores = {**{p: [self.scores[t.number][p] for t in done] for p in self.names},
                  "params": [float(t.user_attrs["params"]) for t in done],
                  "macs": [float(t.user_attrs["macs"]) for t in done]}
        acc = [float(t.user_attrs["accuracy"]) for t in done]
        self.decision = (decide_auto(scores, acc, self.names) if self.proxy == "auto"
                         else decide(scores, acc, self.proxy))
        self.decided_at = n
        self._record()
        return self.decision

    def _record(self) -> None:
        """The decision (and the correlations behind it) into env.json and a progress event."""
        self.session.record_env({"prescreen": {"candidates": self.n, "picked": self.picks,
                                               **self.decision.to_dict()}})
        self.session.log.progress(StageProgress("prescreen", on=self.decision.on,
                                                reason=self.decision.reason))

    def before_ask(self) -> None:
        """When on: queue the best of N feasible random designs for the next ask."""
        if self.n <= 0 or not self.decide().on:
            return
        from nasl.zerocost.prescreen import choose, sample_feasible

        s = self.session
        budgets = s.settings.budgets

        def fits(params: dict[str, Any]) -> bool:
            return not violations(static_costs(s.space.to_arch(params)), budgets, STATIC_METRICS)

        seed = s.settings.seed * 7919 + len(s.study.trials)
        cands = sample_feasible(s.space, self.n, seed, fits)
        if not cands:
            return
        best, _ = choose(s.space, cands, s.evaluator.data, self.decision.proxy,
                         seed=s.settings.seed)
        s.study.enqueue_trial(s.space.encode(cands[best]), user_attrs={"prescreened": True})
        self.picks += 1
