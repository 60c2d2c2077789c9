"""Checks that keep hostile or mistaken input from escaping, allocating or running code.

Every function takes a value from a person (a flag, a YAML key, a file) and either returns
it (possibly normalised) or raises :class:`~nasl.common.errors.NaslError` with one line naming the
value and what is expected. Nothing here allocates in proportion to the value it checks.

In: run names, seeds, counts, storage URLs, export folders, image/label arrays, input sizes.
Out: the checked value, or a NaslError.
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nasl.common.errors import NaslError

#: Seeds must fit numpy's legacy seeding (``np.random.seed``), the strictest user of them.
SEED_MAX = 2**32 - 1
#: Longest run name (a file name; most file systems allow 255 bytes).
NAME_MAX = 200
#: Most classes a data set may declare (the classifier head is num_classes x features).
MAX_CLASSES = 100_000
#: Memory one allocation driven by a user value may take, unless NASL_MAX_ALLOC_GB says more.
DEFAULT_MAX_ALLOC_GB = 8.0
#: Files an export folder holds; ``--force`` removes exactly these before writing.
EXPORT_FILES = ("arch.json", "card.md", "model.py", "model.onnx", "model.onnx.data", "model.pt2",
                "weights.safetensors")

_NAME_RE = re.compile(r"[A-Za-z0-9._+@=,-]+")


def check_run_name(name: Any, flag: str = "--name") -> str:
    """A run name → itself, if it is one safe path component (letters, digits, ``._+@=,-``).

    Refused: empty, ``.``/``..``, separators, absolute paths, control characters (newlines),
    spaces and anything else a shell or a file system could read differently.
    """
    if not isinstance(name, str) or not name:
        raise NaslError(f"{flag} {name!r}: expected a non-empty run name")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise NaslError(f"{flag} {name!r}: control characters (newlines, tabs) are not allowed "
                        "in a run name")
    if name in (".", "..") or "/" in name or "\\" in name or os.path.isabs(name):
        raise NaslError(f"{flag} {name!r}: expected one folder name inside --runs-dir (no '/', "
                        "'\\', '.' or '..'), e.g. --name my-run")
    if not _NAME_RE.fullmatch(name) or name.startswith(("-", ".")):
        raise NaslError(f"{flag} {name!r}: expected letters, digits and . _ - + @ = , only "
                        "(not starting with '-' or '.'), e.g. --name shufflenet-40M")
    if len(name.encode()) > NAME_MAX:
        raise NaslError(f"{flag}: a run name of {len(name.encode())} bytes; expected at most "
                        f"{NAME_MAX}")
    return name


def check_seed(seed: Any, where: str = "--seed") -> int:
    """A seed → int in ``0..2**32-1`` (numpy's range; bool and floats refused)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise NaslError(f"{where} {seed!r}: expected an integer between 0 and {SEED_MAX}")
    if not 0 <= seed <= SEED_MAX:
        raise NaslError(f"{where} {seed}: expected an integer between 0 and {SEED_MAX} "
                        "(2**32 - 1)")
    return seed


def check_int(value: Any, flag: str, low: int = 1, high: int | None = None) -> int:
    """An integer option → itself if ``low <= value (<= high)``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or \
            (high is not None and value > high):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        raise NaslError(f"{flag} {value!r}: expected an integer {span}")
    return value


# ------------------------------------------------------------------------------ memory
def max_alloc_bytes() -> int:
    """Largest allocation a user value may cause: ``NASL_MAX_ALLOC_GB`` (default 8 GB) but
    never more than half of this machine's memory."""
    try:
        gb = float(os.environ.get("NASL_MAX_ALLOC_GB", DEFAULT_MAX_ALLOC_GB))
    except ValueError:
        gb = DEFAULT_MAX_ALLOC_GB
    limit = int(gb * 2**30)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        limit = min(limit, total // 2)
    except (ValueError, OSError, AttributeError):
        pass
    return limit


def check_alloc(nbytes: float, what: str, fix: str) -> None:
    """Refuse an allocation of ``nbytes`` over :func:`max_alloc_bytes` (``fix``: what to do)."""
    limit = max_alloc_bytes()
    if nbytes > limit:
        raise NaslError(f"{what} would need {nbytes / 2**30:.1f} GB of memory (limit "
                        f"{limit / 2**30:.1f} GB, NASL_MAX_ALLOC_GB); {fix}")


def peak_activation_bytes(model: Any, input_shape: tuple[int, ...], dtype_bytes: int = 4) -> int:
    """Peak memory of one forward pass of ``model`` on ``input_shape`` (N, C, H, W), estimated
    on torch's ``meta`` device (shapes only: nothing is allocated): the input plus the two
    largest layer outputs."""
    import copy

    import torch

    net = copy.deepcopy(model).to("meta").eval()
    sizes: list[int] = []

    def hook(_m: Any, _i: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            sizes.append(out.numel())

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(torch.empty(input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    n_in = 1
    for s in input_shape:
        n_in *= int(s)
    top = sorted(sizes, reverse=True)[:2]
    return (n_in + sum(top)) * dtype_bytes


def check_forward_memory(model: Any, input_shape: tuple[int, ...], what: str) -> None:
    """Refuse a forward pass whose activations would exceed :func:`max_alloc_bytes`."""
    check_alloc(peak_activation_bytes(model, input_shape), what,
                "use a smaller --input-size / resolution")


def check_images(shape: tuple[int, ...], where: str) -> None:
    """Image array shape N x C x H x W: every side at least 1 (zero-height images refused)."""
    if len(shape) != 4 or any(int(s) < 1 for s in shape[1:]):
        raise NaslError(f"{where}: images of shape {tuple(shape)}; expected N x C x H x W with "
                        "H, W and C at least 1")


def check_labels(ys: Iterable[Any], where: str, min_classes: int = 2) -> int:
    """Integer label arrays → number of classes (max + 1), checked *before* anything is sized by
    it: 0 <= label < MAX_CLASSES and at least two distinct classes in the first (training) array."""
    import numpy as np

    arrays = [np.asarray(y) for y in ys]
    top = 0
    for y in arrays:
        if y.size == 0:
            continue
        if not np.issubdtype(y.dtype, np.integer):
            raise NaslError(f"{where}: labels of dtype {y.dtype}; expected integers 0..K-1")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= MAX_CLASSES:
            raise NaslError(f"{where}: labels from {lo} to {hi}; expected 0..K-1 with K at most "
                            f"{MAX_CLASSES}")
        top = max(top, hi)
    if min_classes and (not arrays or len(np.unique(arrays[0])) < min_classes):
        raise NaslError(f"{where}: the training labels hold fewer than 2 classes; a classifier "
                        "needs at least 2")
    return top + 1


def check_data_memory(n_images: int, channels: int, resolution: int, where: str) -> None:
    """Refuse holding ``n_images`` float32 images at ``resolution`` over the memory limit."""
    check_alloc(4.0 * n_images * channels * resolution * resolution,
                f"{where}: {n_images} images of {channels}x{resolution}x{resolution}",
                "lower proxy.resolution or use proxy.subset")


# ------------------------------------------------------------------------------ storage
def check_storage_url(url: Any, flag: str = "--storage") -> str:
    """An Optuna storage URL → itself, if it parses, its driver imports and (for SQLite) its
    folder exists. Journal files (``*.log``) are accepted as paths."""
    if not isinstance(url, str) or not url.strip():
        raise NaslError(f"{flag} {url!r}: expected a storage URL like sqlite:///path/study.db or "
                        "postgresql://user@host/db")
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:  # pragma: no cover - optuna depends on sqlalchemy
        return url
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise NaslError(f"{flag} {url!r}: not a storage URL; expected e.g. "
                        "sqlite:///runs/study.db or postgresql://user@host/db") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not Path(db).parent.is_dir():
            raise NaslError(f"{flag} {url!r}: folder {str(Path(db).parent)!r} does not exist; "
                            "create it first or choose another path")
        return url
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as e:
        raise NaslError(f"{flag} {url!r}: the database driver is not installed ({e}); e.g. "
                        "pip install psycopg2-binary for postgresql://") from None
    except Exception as e:  # unknown dialect
        raise NaslError(f"{flag} {url!r}: unsupported database ({type(e).__name__}: {e})") from None
    return url


RELATIVE_SQLITE = "sqlite:///study.db"


def stored_storage(url: str, run_root: Path) -> str:
    """The storage URL to write into env.json: the run's own ``study.db`` becomes the relative
    :data:`RELATIVE_SQLITE` (so a copied or moved run folder reads its own copy)."""
    own = f"sqlite:///{(Path(run_root) / 'study.db').resolve()}"
    return RELATIVE_SQLITE if url == own else url


def resolved_storage(url: str, run_root: Path) -> str:
    """The URL of a run's study: a relative SQLite path (``sqlite:///study.db``) is read in the
    run folder; an absolute ``.../<run name>/study.db`` of a run folder that was copied or moved
    (older env.json files) is read from this folder's own ``study.db``; other absolute paths and
    server URLs are as given."""
    if not isinstance(url, str) or not url.startswith("sqlite:///"):
        return url
    path = url[len("sqlite:///"):]
    own = Path(run_root) / "study.db"
    if path and not path.startswith(":") and not url.startswith("sqlite:////"):
        return f"sqlite:///{(Path(run_root) / path).resolve()}"
    if Path(path).name == "study.db" and Path(path).parent.name == Path(run_root).name \
            and own.is_file() and Path(path).resolve() != own.resolve():
        # a run written before storage was stored relative, then copied or moved
        return f"sqlite:///{own.resolve()}"
    return url


def check_sqlite_file(url: str, where: str) -> None:
    """A SQLite storage that must already hold a study: the file exists and is a database
    (a missing or truncated file is one line, and is never created)."""
    if not url.startswith("sqlite:///"):
        return
    db = Path(url[len("sqlite:///"):])
    if not db.is_file():
        raise NaslError(f"{where}: study database {str(db)!r} not found")
    with db.open("rb") as f:
        head = f.read(100)
    if len(head) < 100 or head[:16] != b"SQLite format 3\x00":
        raise NaslError(f"{where}: {str(db)!r} is not a SQLite database (empty, truncated or "
                        "overwritten); restore it from a copy")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    if pages and db.stat().st_size < page * pages:
        raise NaslError(f"{where}: {str(db)!r} is not a SQLite database any more: truncated to "
                        f"{db.stat().st_size} of {page * pages} bytes; restore it from a copy")


# ------------------------------------------------------------------------------ exports
def check_export_out(out: Path, force: bool) -> None:
    """Refuse to write an export into a folder that already holds one, unless ``force``; with
    ``force`` the previous export's files are removed first (so one folder never mixes models)."""
    out = Path(out)
    if not out.is_dir():
        return
    old = [out / f for f in EXPORT_FILES if (out / f).exists()]
    if not old:
        return
    if not force:
        raise NaslError(f"{str(out)!r} already holds an export ({', '.join(p.name for p in old)}); "
                        "pass --force to replace it or --out DIR for another folder")
    for p in old:
        p.unlink()


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when it is an empty directory (else leave it)."""
    with contextlib.suppress(OSError):
        Path(folder).rmdir()


# ------------------------------------------------------------------------------ run lock
def lock_run(root: Path) -> Any:
    """Hold an exclusive lock on ``root/.lock`` for as long as the returned file stays open
    (the process's life): a second ``nasl search`` on the same run folder gets one line instead
    of racing for the study. POSIX record locks: released when the process ends, even by
    ``kill -9``; a process re-locking its own run succeeds."""
    import fcntl

    path = Path(root) / ".lock"
    try:
        f = path.open("a+")
    except OSError as e:
        raise NaslError(f"cannot write in run folder {str(root)!r}: {e.strerror or e}") from None
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise NaslError(f"run {str(root)!r} is in use by {holder}; wait for it to finish, or "
                        "use --name NAME for another run") from None
    f.seek(0)
    f.truncate()
    f.write(f"nasl search pid {os.getpid()}\n")
    f.flush()
    return f
