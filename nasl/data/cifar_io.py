"""CIFAR python batches read without running code from the file.

The official CIFAR-10/100 "python version" batches are pickles of a dict of bytes keys, a
uint8 numpy array ``data`` (N x 3072) and label lists. ``pickle.load`` would run whatever a
crafted file asks for; :func:`read_batch` unpickles with an allow-list of exactly the globals
such a file needs (numpy's array reconstruction, ``numpy.dtype``, ``_codecs.encode``), so any
other global (``os.system``, ``builtins.eval``, ...) ends as one line and nothing runs.

In: a batch file path. Out: its dict (``NaslError`` if the file is missing, not a pickle of
that form, or asks for anything else).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from nasl.common.errors import NaslError

#: (module, name) pairs a CIFAR batch may reference: nothing that can run code.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _Refused(Exception):
    pass


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the globals in :data:`ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


def read_batch(path: Path) -> dict[Any, Any]:
    """The dict of one CIFAR python batch at ``path``, unpickled with :data:`ALLOWED` only."""
    path = Path(path)
    if not path.is_file():
        raise NaslError(f"{path} not found; expected the extracted python version of the "
                        "official CIFAR tar (nothing is downloaded)")
    try:
        with path.open("rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise NaslError(f"{path}: refused: the file asks to load {e}, which a CIFAR batch never "
                        "does (it could run code); use the official batches") from None
    except Exception as e:
        raise NaslError(f"{path}: not a CIFAR python batch ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(obj, dict):
        raise NaslError(f"{path}: a {type(obj).__name__}, expected a CIFAR batch (a dict with "
                        "'data' and labels)")
    return obj
