"""The trial record: one definition of a trial's fields, their units, the CSV columns of
``trials.csv``/``pareto.csv`` and the status of a trial (no torch, no Optuna).

In: nothing (definitions), a latency result (:func:`latency_fields`) or a row
(:func:`status`). Out: names and small dicts that every layer (the search's lifecycle,
``results``, ``report``, ``tracking``, ``export``) uses instead of its own lists.

A *record* is what a trial carries as Optuna user attributes; a *row* is one line of
``trials.csv`` built from it (``number``, ``state`` and ``baseline`` first, then the design
choices, then :data:`AFTER`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasl.vocab import OPEN_STATES


@dataclass(frozen=True)
class Field:
    """One column of a trial row: name, kind (int, float, bool, text), unit and meaning."""

    name: str
    kind: str
    unit: str
    doc: str


#: The columns of every trials.csv row after the design choices, in order.
FIELDS: tuple[Field, ...] = (
    Field("macs", "int", "multiply-adds", "MACs of the target network (conv + linear only)"),
    Field("params", "int", "parameters", "trainable parameters of the target network"),
    Field("size_mb", "float", "MiB", "fp32 size: 4 bytes x params / 2**20"),
    Field("latency_ms", "float", "ms", "median latency on the target device (final re-timing "
          "for front members)"),
    Field("latency_p10_ms", "float", "ms", "10th percentile of the timed runs"),
    Field("latency_p90_ms", "float", "ms", "90th percentile of the timed runs"),
    Field("latency_low_ms", "float", "ms", "95 % interval of the median over the final "
          "interleaved re-timing rounds (low end)"),
    Field("latency_high_ms", "float", "ms", "... (high end)"),
    Field("latency_rounds_ms", "text", "ms", "median of each final re-timing round"),
    Field("accuracy", "float", "fraction", "proxy validation accuracy at the last epoch, mean "
          "over the trial's seeds"),
    Field("accuracy_std", "float", "fraction", "seed standard deviation behind the interval (the "
          "trial's own, or the run's pooled one when larger or with one seed)"),
    Field("accuracy_low", "float", "fraction", "95 % t-interval of the mean accuracy (low end)"),
    Field("accuracy_high", "float", "fraction", "... (high end)"),
    Field("n_seeds", "int", "seeds", "seeds the design was trained with (search + confirmation)"),
    Field("accuracy_seeds", "text", "fraction", "every seed's accuracy"),
    Field("confirmed_accuracy", "float", "fraction", "mean holdout accuracy over the fresh seeds "
          "of the confirmation (higher fidelity, the run's recipe); empty if not confirmed"),
    Field("confirmed_low", "float", "fraction", "95 % t-interval of it (pooled seed std; low end)"),
    Field("confirmed_high", "float", "fraction", "... (high end)"),
    Field("confirmed_seeds", "int", "seeds", "fresh seeds of the confirmation"),
    Field("confirmed_epochs", "int", "epochs", "epochs of each confirmation training"),
    Field("best_accuracy", "float", "fraction", "best proxy validation accuracy over epochs "
          "(first seed)"),
    Field("epochs", "int", "epochs", "epochs trained (fewer when stopped)"),
    Field("seconds", "float", "s", "training wall time"),
    Field("feasible", "bool", "", "within every budget"),
    Field("pareto", "bool", "", "on the feasible non-dominated front (of the mean accuracies)"),
    Field("confident", "bool", "", "front member not tied within noise with a cheaper member"),
    Field("tied_with", "int", "", "the cheaper front member this one is tied with (if any)"),
    Field("reason", "text", "", "why the trial was rejected, stopped or failed"),
    Field("device", "text", "", "latency device (cpu, cuda:0, ...)"),
    Field("device_name", "text", "", "latency device model"),
    Field("latency_target", "text", "", "remote target that measured the latency: host/CPU or "
          "GPU/onnxruntime version/fingerprint id (empty: this machine)"),
    Field("node", "text", "", "host that ran the trial (Ray)"),
    Field("arch_id", "text", "", "stable id of the ArchConfig"),
    Field("seed", "int", "", "per-trial seed from (study seed, trial number)"),
    Field("cpu_ratio", "float", "", "training CPU time / (wall time x threads): ~1 on a quiet "
          "machine, low when contended"),
    Field("contended", "bool", "", "the trial trained on a contended machine (cpu_ratio low)"),
    Field("threads", "int", "", "torch threads the training ended with (1 when a busy machine "
          "made nasl step down)"),
    Field("train_device", "text", "", "where the trial trained (cpu, cuda:0, mps)"),
    Field("precision", "text", "", "training precision (fp32, bf16, fp16)"),
    Field("images_per_second", "float", "images/s", "training throughput of the first seed "
          "(training steps only; compilation excluded)"),
)
#: Columns before the design choices.
BEFORE: tuple[str, ...] = ("number", "state", "baseline")
#: Column names after the design choices.
AFTER: tuple[str, ...] = tuple(f.name for f in FIELDS)
#: Columns computed when rows are written, not stored on the trial.
DERIVED: tuple[str, ...] = ("pareto", "confident", "tied_with", "accuracy_std", "accuracy_low",
                            "accuracy_high", "n_seeds", "confirmed_accuracy", "confirmed_low",
                            "confirmed_high", "confirmed_seeds", "confirmed_epochs")

KINDS = {"number": "int", "state": "text", "baseline": "text", **{f.name: f.kind for f in FIELDS}}
INT_COLUMNS = tuple(k for k, v in KINDS.items() if v == "int")
FLOAT_COLUMNS = tuple(k for k, v in KINDS.items() if v == "float")
BOOL_COLUMNS = tuple(k for k, v in KINDS.items() if v == "bool")
TEXT_COLUMNS = tuple(k for k, v in KINDS.items() if v == "text" and k != "number")

#: The latency part of a record.
LATENCY_FIELDS = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "device", "device_name",
                  "latency_target")
#: Costs known from the architecture (recorded before training).
STATIC_FIELDS = ("macs", "params", "size_mb", "size_int8_mb")
#: What a worker reports back about a trial besides its costs (the Ray backend).
OUTCOME_FIELDS = (*LATENCY_FIELDS, "node", "accuracy", "accuracy_seeds", "best_accuracy", "epochs",
                  "seconds", "reason", "cpu_ratio", "contended", "threads",
                  "images_per_second", "train_device", "precision", "batch_size", "compile_seconds")
#: Row keys worth a trial's summary in a tracker (W&B).
SUMMARY_FIELDS = ("macs", "params", "size_mb", "size_int8_mb", *LATENCY_FIELDS[:3], "accuracy",
                  "accuracy_low", "accuracy_high", "n_seeds", "best_accuracy", "epochs", "seconds",
                  "device", "device_name", "node", "arch_id", "seed", "cpu_ratio", "contended")
#: Study user attribute: trial number → latency re-measured in interleaved rounds at the end.
FINAL_LATENCY = "final_latency"
#: Study user attribute of runs before the higher-fidelity confirmation: trial number →
#: {"seeds": [...], "accuracies": [...]} (extra seeds at the search's fidelity; still read).
CONFIRM = "confirm"
#: Study user attribute: recipe label → {"epochs", "describe", "designs": trial number →
#: {"seeds", "accuracies", "correct" (packed per-image bits, hex), "images"}} (nasl.search.confirm).
DECIDE = "decide"
#: Study user attribute: the run's answer (recommendation, claims; nasl.decide.answer).
ANSWER = "answer"


def latency_fields(lat: Any, *, full: bool = True) -> dict[str, Any]:
    """The latency fields of a record from a :class:`nasl.cost.Latency` (duck-typed).

    ``full`` adds ``latency``: every number of the measurement (threads, batch, dtype, ...).
    """
    out: dict[str, Any] = {"latency_ms": lat.median_ms, "latency_p10_ms": lat.p10_ms,
                           "latency_p90_ms": lat.p90_ms, "device": lat.device,
                           "device_name": lat.device_name}
    if getattr(lat, "fingerprint", None):  # measured by a remote target (nasl.latency.remote)
        out["latency_target"] = lat.target
    if full:
        out["latency"] = lat.to_dict()
    return out


def status(row: Mapping[str, Any]) -> str:
    """A row's status: front / feasible / pruned / failed / infeasible / running / queued."""
    state = str(row.get("state"))
    if state in OPEN_STATES:
        return "queued" if state == "WAITING" else "running"
    if row.get("feasible") is False:
        return "infeasible"
    if state == "COMPLETE":
        return "front" if row.get("pareto") else "feasible"
    return {"PRUNED": "pruned", "FAIL": "failed"}.get(state, state.lower())
