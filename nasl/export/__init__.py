"""Export a network as standalone artifacts: model.py, weights, ONNX, torch.export, card.

In: a run and a trial (:func:`export_run`), a paper preset (:func:`export_preset`) or any
ArchConfig with an optional trained module (:func:`export_arch`). Out: one folder holding
``model.py`` (imports only torch), ``weights.safetensors``, ``model.onnx``, ``model.pt2``,
``arch.json`` and ``card.md``, each checked against the eager model.
"""

from nasl.export.artifacts import (
    FORMATS,
    TOLERANCE,
    ExportParityError,
    ExportResult,
    export_arch,
    parse_formats,
)
from nasl.export.codegen import generate_source, load_module
from nasl.export.pipeline import (
    DEFAULT_PICK,
    choose_trial,
    default_epochs,
    export_preset,
    export_run,
)

__all__ = [
    "DEFAULT_PICK",
    "FORMATS",
    "TOLERANCE",
    "ExportParityError",
    "ExportResult",
    "choose_trial",
    "default_epochs",
    "export_arch",
    "export_preset",
    "export_run",
    "generate_source",
    "load_module",
    "parse_formats",
]
