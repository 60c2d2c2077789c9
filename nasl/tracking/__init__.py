"""Weights & Biases tracking of a search: one run per trial plus one summary run.

In: the events a search's :class:`nasl.search.lifecycle.TrialLog` sends to its listeners
(``start``, ``epoch``, ``complete``/``pruned``/``fail``/``rejected``, ``front``, ``finished``).
Out: W&B runs, grouped under the nasl run name:

- one run per trial (``job_type="trial"``): the design choices as config; MACs, params,
  size, latency (median, p10, p90, spread), state (COMPLETE / PRUNED / FAIL / infeasible),
  feasibility and the reason as summary; per-epoch ``accuracy`` and ``loss`` as history
  (``step = epoch``). Infeasible (never trained) candidates get a short run with their
  costs; failed trials finish with exit code 1 so the UI marks them as failed.
- one summary run (``job_type="search"``), updated as trials finish: ``hypervolume`` (of
  the feasible front, objectives normalised by the reference point) against ``trials``;
  the ``trials`` table (every trial, with ``pareto``, ``feasible``, ``baseline`` and a
  ``status`` column); Pareto charts (accuracy vs MACs, accuracy vs latency, MACs vs
  latency; plotly, from :mod:`nasl.report`) that mark the front, the baselines and the
  budgets; the resolved space as a ``search-space`` artifact; at the end ``report.html``
  (Files tab and an HTML panel), the ``front`` table and the ``hypervolume_curve`` line
  chart recomputed with the final reference point.

Mode: ``WANDB_MODE`` (or the ``mode`` argument) is respected; ``disabled`` makes the
tracker a no-op that writes nothing. Without an API key (``WANDB_API_KEY``,
``WANDB_IDENTITY_TOKEN_FILE`` or a ``.netrc`` entry for the W&B host) it logs offline
under ``<run_dir>/wandb/offline-run-*`` and prints the ``wandb sync`` command at the end.
Artifact staging (``WANDB_DATA_DIR``, ``WANDB_CACHE_DIR``, ``WANDB_ARTIFACT_DIR``) goes
under ``<run_dir>/wandb/`` unless the user set those variables, so a run folder is
self-contained and can be synced later.

Robustness: the listener only copies the event into a queue; every W&B call happens in
one background thread, so W&B never slows the search (measured offline: a trial run's
``init`` ≈ 0.03–0.1 s, ``finish`` ≈ 0.01 s, off the search's thread). The first W&B error
emits one warning and switches the tracker off; nothing is ever raised into the search.
The big payloads (table, charts) are rebuilt only on ``front`` events (after a trial
ends), at most every ``table_interval`` seconds, and always on the final one.

With several workers (the Ray backend), log from the driver: send it the same events
(trial runs are keyed by trial number, so interleaved trials are fine).
"""

from nasl.stats.pareto import hypervolume_curve, normalised_hypervolume
from nasl.tracking.mode import has_api_key, resolve_mode
from nasl.tracking.tracker import WandbTracker

__all__ = ["WandbTracker", "has_api_key", "hypervolume_curve", "normalised_hypervolume",
           "resolve_mode"]
