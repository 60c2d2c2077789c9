"""The trial record: one definition of a trial's fields, their units, the CSV columns of
``trials.csv``/``pareto.csv`` and the status of a trial (no torch, no Optuna).

In: nothing (definitions), a latency result (:meth:`TrialRecord.with_latency`) or a row
(:func:`status`). Out: names and small dicts that every layer (the search's lifecycle,
``results``, ``report``, ``tracking``, ``export``) uses instead of its own lists.

A *record* is what a trial carries as Optuna user attributes; a *row* is one line of
``trials.csv`` built from it (``number``, ``state`` and ``baseline`` first, then the design
choices, then :data:`AFTER`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from nasl.common.vocab import OPEN_STATES


def _f(kind: str, unit: str, doc: str, *, default: Any = None, stored: bool = True,
       csv: str | None = None) -> Any:
    """A :class:`TrialRecord` field: its kind (int, float, bool, text, choices, detail), unit and
    meaning; ``stored=False``: computed when rows are written (never a user attribute);
    ``csv``: why a stored field is not a trials.csv column of its own (None: it is one)."""
    return field(default=default, metadata={"kind": kind, "unit": unit, "doc": doc,
                                            "stored": stored, "csv": csv})


@dataclass
class TrialRecord:
    """Everything nasl records about one trial, in trials.csv column order.

    A trial stores it as Optuna user attributes (:meth:`to_attrs`, :meth:`from_trial`); a row of
    ``trials.csv`` is ``number``, ``state``, ``baseline``, the design choices, then every field
    with a column. Fields whose metadata says ``stored=False`` are derived when rows are written
    (front, seed statistics, confirmation); a stored field without a column says why (``csv``).
    """

    baseline: str | None = _f("text", "", "the paper baseline this trial reproduces (empty: "
                              "searched)", csv="a column before the design choices")
    choices: dict[str, Any] | None = _f("choices", "", "the design's choices",
                                        csv="one column per choice (between baseline and macs)")
    macs: int | None = _f("int", "multiply-adds", "MACs of the target network (conv + linear "
                          "only)")
    params: int | None = _f("int", "parameters", "trainable parameters of the target network")
    size_mb: float | None = _f("float", "MiB", "fp32 size: 4 bytes x params / 2**20")
    size_int8_mb: float | None = _f("float", "MiB", "int8 size: 1 byte x params / 2**20")
    latency_ms: float | None = _f("float", "ms", "median latency on the target device (final "
                                  "re-timing for front members)")
    latency_p10_ms: float | None = _f("float", "ms", "10th percentile of the timed runs")
    latency_p90_ms: float | None = _f("float", "ms", "90th percentile of the timed runs")
    latency_low_ms: float | None = _f("float", "ms", "95 % interval of the median over the final "
                                      "interleaved re-timing rounds (low end)", stored=False)
    latency_high_ms: float | None = _f("float", "ms", "... (high end)", stored=False)
    latency_rounds_ms: list[float] | None = _f("text", "ms", "median of each final re-timing "
                                               "round", stored=False)
    latency_search_ms: float | None = _f("float", "ms", "median latency measured during the "
                                         "search (before the final re-timing)", stored=False)
    latency_predicted_ms: float | None = _f("float", "ms", "latency the calibrated predictor "
                                            "expected before measuring (empty: no predictor)")
    accuracy: float | None = _f("float", "fraction", "proxy validation accuracy at the last "
                                "epoch, mean over the trial's seeds")
    accuracy_std: float | None = _f("float", "fraction", "seed standard deviation behind the "
                                    "interval (the trial's own, or the run's pooled one when "
                                    "larger or with one seed)", stored=False)
    accuracy_low: float | None = _f("float", "fraction", "95 % t-interval of the mean accuracy "
                                    "(low end)", stored=False)
    accuracy_high: float | None = _f("float", "fraction", "... (high end)", stored=False)
    n_seeds: int | None = _f("int", "seeds", "seeds the design was trained with (search + "
                             "confirmation)", stored=False)
    accuracy_seeds: list[float] | None = _f("text", "fraction", "every seed's accuracy")
    accuracy_expected: float | None = _f("float", "fraction", "expected accuracy on a fresh seed "
                                         "at the search's fidelity: the accuracy shrunk toward "
                                         "the run's log-MACs trend by its seed noise (empirical "
                                         "Bayes, nasl.stats.shrink; corrects the front's "
                                         "selection luck); empty without a seed std",
                                         stored=False)
    confirmed_accuracy: float | None = _f("float", "fraction", "mean holdout accuracy over the "
                                          "fresh seeds of the confirmation (higher fidelity, the "
                                          "run's recipe); empty if not confirmed", stored=False)
    confirmed_low: float | None = _f("float", "fraction", "95 % t-interval of it (pooled seed "
                                     "std; low end)", stored=False)
    confirmed_high: float | None = _f("float", "fraction", "... (high end)", stored=False)
    confirmed_seeds: int | None = _f("int", "seeds", "fresh seeds of the confirmation",
                                     stored=False)
    confirmed_epochs: int | None = _f("int", "epochs", "epochs of each confirmation training",
                                      stored=False)
    best_accuracy: float | None = _f("float", "fraction", "best proxy validation accuracy over "
                                     "epochs (first seed)")
    curve: list[float] | None = _f("text", "fraction", "validation accuracy after each epoch "
                                   "(first seed)")
    epochs: int | None = _f("int", "epochs", "epochs trained (fewer when stopped)")
    seconds: float | None = _f("float", "s", "training wall time")
    trained: bool | None = _f("bool", "", "went into training (counts towards --trials)")
    feasible: bool | None = _f("bool", "", "within every budget")
    pareto: bool | None = _f("bool", "", "on the feasible non-dominated front (of the mean "
                             "accuracies)", stored=False)
    confident: bool | None = _f("bool", "", "front member not tied within noise with a cheaper "
                                "member", stored=False)
    tied_with: int | None = _f("int", "", "the cheaper front member this one is tied with (if "
                               "any)", stored=False)
    repeat_of: int | None = _f("int", "", "the trial whose values a repeated design was told "
                               "(tabular spaces; not evaluated again)")
    reason: str | None = _f("text", "", "why the trial was rejected, stopped or failed")
    device: str | None = _f("text", "", "latency device (cpu, cuda:0, ...)")
    device_name: str | None = _f("text", "", "latency device model")
    latency_target: str | None = _f("text", "", "remote target that measured the latency: "
                                    "host/CPU or GPU/onnxruntime version/fingerprint id (empty: "
                                    "this machine)")
    latency: dict[str, Any] | None = _f("detail", "", "every number of the latency measurement "
                                        "(threads, batch, dtype, warm-up, repeats, ...)",
                                        csv="its summary is the latency_* columns; the detail is "
                                        "in pareto.json and the model card")
    node: str | None = _f("text", "", "host that ran the trial (Ray)")
    arch_id: str | None = _f("text", "", "stable id of the ArchConfig")
    seed: int | None = _f("int", "", "per-trial seed from (study seed, trial number)")
    cpu_ratio: float | None = _f("float", "", "training CPU time / (wall time x threads): ~1 on "
                                 "a quiet machine, low when contended")
    contended: bool | None = _f("bool", "", "the trial trained on a contended machine (cpu_ratio "
                                "low)")
    threads: int | None = _f("int", "", "torch threads the training ended with (1 when a busy "
                             "machine made nasl step down)")
    train_device: str | None = _f("text", "", "where the trial trained (cpu, cuda:0, mps)")
    precision: str | None = _f("text", "", "training precision (fp32, bf16, fp16)")
    batch_size: int | None = _f("int", "images", "training batch size the trial ended with "
                                "(halved after running out of device memory)")
    compile_seconds: float | None = _f("float", "s", "torch.compile time (excluded from the "
                                       "throughput)")
    images_per_second: float | None = _f("float", "images/s", "training throughput of the first "
                                         "seed (training steps only; compilation excluded)")

    # ------------------------------------------------------------------ conversions
    def to_attrs(self) -> dict[str, Any]:
        """The stored fields that are set (not None), as Optuna user attributes."""
        return {k: getattr(self, k) for k in STORED if getattr(self, k) is not None}

    @staticmethod
    def columns(**values: Any) -> dict[str, Any]:
        """``values`` checked against the fields (``TypeError`` on a name that is not one), None
        kept: the way a layer sets derived columns of a row (seed statistics, confirmation)."""
        unknown = sorted(set(values) - set(NAMES))
        if unknown:
            raise TypeError(f"not TrialRecord fields: {unknown}")
        return values

    def values(self) -> dict[str, Any]:
        """Every set field (stored or derived) as a dict."""
        return {k: getattr(self, k) for k in NAMES if getattr(self, k) is not None}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """A record from user attributes (or any mapping); unknown keys are ignored."""
        return cls(**{k: attrs[k] for k in NAMES if k in attrs})

    @classmethod
    def from_trial(cls, trial: Any) -> TrialRecord:
        """The record an Optuna trial (frozen or live) stores."""
        return cls.from_attrs(trial.user_attrs)

    def update(self, other: TrialRecord | Mapping[str, Any] | None = None, **changes: Any) -> TrialRecord:
        """Set the fields given (``other``'s set fields, then ``changes``) → self.

        ``TypeError`` on a name that is not a field (a typo never becomes a silent attribute)."""
        items = dict(other.to_attrs() if isinstance(other, TrialRecord) else (other or {}))
        items.update(changes)
        unknown = sorted(set(items) - set(NAMES))
        if unknown:
            raise TypeError(f"not TrialRecord fields: {unknown}")
        for k, v in items.items():
            setattr(self, k, v)
        return self

    def merged(self, **changes: Any) -> TrialRecord:
        """A copy with ``changes`` set (this record is left as it is)."""
        return replace(self).update(**changes)

    def get(self, name: str, default: Any = None) -> Any:
        """A field's value, or ``default`` when it is None or not a field (mapping-like reads)."""
        value = getattr(self, name, None) if name in NAMES else None
        return default if value is None else value

    def pick(self, names: Sequence[str]) -> dict[str, Any]:
        """The set fields among ``names`` (e.g. :data:`STATIC_FIELDS`) as a dict."""
        return {k: getattr(self, k) for k in names if getattr(self, k, None) is not None}

    def with_latency(self, lat: Any, *, full: bool = True) -> TrialRecord:
        """Set the latency fields from a :class:`nasl.latency.Latency` (duck-typed) → self.

        ``full`` keeps every number of the measurement in :attr:`latency`."""
        self.update(latency_ms=lat.median_ms, latency_p10_ms=lat.p10_ms,
                    latency_p90_ms=lat.p90_ms, device=lat.device, device_name=lat.device_name)
        if getattr(lat, "fingerprint", None):  # measured by a remote target (nasl.latency.remote)
            self.latency_target = lat.target
        if full:
            self.latency = lat.to_dict()
        return self


@dataclass
class Outcome:
    """What training a candidate produced (every backend builds this, nothing else):
    the fields of a :class:`TrialRecord` that a training sets."""

    accuracy: float
    accuracy_seeds: list[float]
    best_accuracy: float
    epochs: int
    seconds: float
    images_per_second: float | None = None
    train_device: str | None = None
    cpu_ratio: float | None = None
    contended: bool | None = None
    threads: int | None = None
    precision: str | None = None
    batch_size: int | None = None
    compile_seconds: float | None = None

    @classmethod
    def of(cls, result: Any, accuracies: Sequence[float], seconds: float) -> Outcome:
        """From a training result (:class:`nasl.training.train.TrainResult`, duck-typed), the accuracy of
        every seed (the result's first) and the wall time of all of them."""
        accs = [float(a) for a in accuracies]
        health = {k: getattr(result, k) for k in HEALTH if getattr(result, k, None) is not None}
        if getattr(result, "device", None) is not None:
            health["train_device"] = result.device
        return cls(accuracy=sum(accs) / len(accs), accuracy_seeds=accs,
                   best_accuracy=float(result.best_accuracy), epochs=int(result.epochs),
                   seconds=round(float(seconds), 3), **health)

    def to_attrs(self) -> dict[str, Any]:
        """The set fields (a Ray worker reports this; :meth:`from_attrs` reads it back)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Outcome:
        names = [f.name for f in fields(cls)]
        return cls(**{k: attrs[k] for k in names if attrs.get(k) is not None})


#: Training-health fields of a TrainResult copied into an :class:`Outcome`.
HEALTH = ("images_per_second", "cpu_ratio", "contended", "threads", "precision", "batch_size",
          "compile_seconds")


@dataclass(frozen=True)
class Field:
    """One column of a trial row: name, kind (int, float, bool, text), unit and meaning."""

    name: str
    kind: str
    unit: str
    doc: str


#: Every field of the record, in order.
NAMES: tuple[str, ...] = tuple(f.name for f in fields(TrialRecord))
#: Fields stored on a trial (user attributes).
STORED: tuple[str, ...] = tuple(f.name for f in fields(TrialRecord) if f.metadata["stored"])
#: The columns of every trials.csv row after the design choices, in order.
FIELDS: tuple[Field, ...] = tuple(
    Field(f.name, f.metadata["kind"], f.metadata["unit"], f.metadata["doc"])
    for f in fields(TrialRecord) if f.metadata["csv"] is None)
#: Columns before the design choices.
BEFORE: tuple[str, ...] = ("number", "state", "baseline")
#: Column names after the design choices.
AFTER: tuple[str, ...] = tuple(f.name for f in FIELDS)
#: Columns computed when rows are written, not stored on the trial.
DERIVED: tuple[str, ...] = tuple(f.name for f in fields(TrialRecord) if not f.metadata["stored"])

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
#: Row keys worth a trial's summary in a tracker (W&B).
SUMMARY_FIELDS = ("macs", "params", "size_mb", "size_int8_mb", *LATENCY_FIELDS[:3], "accuracy",
                  "accuracy_low", "accuracy_high", "n_seeds", "best_accuracy", "epochs", "seconds",
                  "device", "device_name", "node", "arch_id", "seed", "cpu_ratio", "contended",
                  "images_per_second")
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
