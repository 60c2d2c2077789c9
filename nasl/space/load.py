"""Finding and reading search spaces: a file path, or a shipped space by name.

The shipped spaces are package data in ``nasl/spaces/*.yaml``. From any directory, after a
plain install, a shipped space is named by any of::

    shufflenet   shufflenet.yaml   spaces/shufflenet.yaml   search_spaces/shufflenet.yaml

(``nasl/spaces/shufflenet.yaml`` too; ``.yml`` for ``.yaml`` is fine). A file that exists at
the path given always wins over the shipped space of that name. The space loaded remembers
which file it came from (``source_path``, ``source_kind``); :func:`describe_source` says
so in one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePath

from nasl.common.errors import NaslError
from nasl.space.model import SearchSpace, build_space
from nasl.space.yamlsafe import Locator, read_yaml

SUFFIXES = (".yaml", ".yml")
SHIPPED_FOLDERS = (("spaces",), ("search_spaces",), ("nasl", "spaces"))
"""Folders whose ``<name>.yaml`` means the shipped space when no such file exists."""

_LINK_TEXT = re.compile(r"^[\w./-]+\.ya?ml$")


@dataclass(frozen=True)
class SpaceFile:
    """A resolved space: the file to read, whether it is ``"shipped"`` or a ``"user file"``,
    and the name to show in error messages (``shufflenet.yaml`` for a shipped one, else the
    path as given)."""

    path: Path
    kind: str
    source: str


def shipped_dir() -> Path:
    """The folder holding the shipped spaces (``nasl/spaces``)."""
    return Path(str(resources.files("nasl").joinpath("spaces")))


def shipped_names() -> list[str]:
    """Names of the shipped spaces, sorted."""
    d = shipped_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def loads_space(text: str | bytes, source: str = "<string>", *,
                default_name: str = "space", base_dir: Path | None = None) -> SearchSpace:
    """Parse and validate YAML text → SearchSpace (NaslError naming ``source``); a ``family:
    table`` document gives a :class:`~nasl.space.table.TableSpace` whose relative
    ``table.file`` is looked for in ``base_dir`` (default: the working directory)."""
    loc = Locator(source)
    doc = read_yaml(text, loc)
    if isinstance(doc, dict) and doc.get("family") == "table":
        from nasl.space.table import build_table_space

        return build_table_space(doc, loc, base_dir, default_name=default_name)  # type: ignore[return-value]
    return build_space(doc, loc, default_name=default_name)


def _stem(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _shipped_form(text: str) -> bool:
    """Whether ``text`` is written the way a shipped space is named: ``NAME[.yaml]`` or
    ``spaces/``, ``search_spaces/``, ``nasl/spaces/`` + ``NAME[.yaml]`` (relative, no ``.``
    or ``..`` parts, no ``~``)."""
    if not text or text.startswith((".", "~")) or os.path.isabs(text):
        return False
    parts = PurePath(text).parts
    return len(parts) >= 1 and (len(parts) == 1 or tuple(parts[:-1]) in SHIPPED_FOLDERS)


def _is_shipped(path: Path) -> bool:
    try:
        return path.resolve().parent == shipped_dir().resolve()
    except OSError:
        return False


def _link_placeholder(path: Path) -> Path | None:
    """The file a git symlink checked out as plain text points to (``core.symlinks=false``,
    e.g. on Windows: the file holds ``../nasl/spaces/x.yaml``), or None."""
    try:
        if path.is_symlink() or path.stat().st_size > 256:
            return None
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if "\n" in text or not _LINK_TEXT.match(text):
        return None
    target = path.parent / text
    return target if target.is_file() else None


def resolve_space(path_or_name: str | os.PathLike[str]) -> SpaceFile:
    """Which file a space argument means: an existing file (always wins), else the shipped
    space named by ``NAME``, ``NAME.yaml``, ``spaces/NAME.yaml``, ``search_spaces/NAME.yaml``
    or ``nasl/spaces/NAME.yaml``. NaslError saying what was looked for, what exists and the
    closest shipped name otherwise."""
    text = os.fspath(path_or_name)
    path = Path(text).expanduser()
    names = shipped_names()
    if path.is_dir():
        raise NaslError(f"{text}: is a directory; expected a search-space YAML file or one "
                        f"of the shipped spaces: {', '.join(names)}")
    if path.is_file():
        real = _link_placeholder(path) or path
        if _is_shipped(real):
            return SpaceFile(shipped_dir() / real.name, "shipped", real.name)
        return SpaceFile(real, "user file", text)
    stem = _stem(path.name)
    if _shipped_form(text) and stem in names:
        return SpaceFile(shipped_dir() / f"{stem}.yaml", "shipped", f"{stem}.yaml")
    raise NaslError(not_found_message(text, names))


def not_found_message(text: str, names: list[str]) -> str:
    """One line for a space argument that is neither a file nor a shipped space: the file
    looked for, the shipped names, and the closest one as ``spaces/NAME.yaml``."""
    path = Path(text).expanduser()
    stem = _stem(path.name)
    looked = f"no such space file {text!r} (looked for {path.absolute()})"
    shipped = f"shipped spaces: {', '.join(names) or 'none'}"
    close = difflib.get_close_matches(stem, names, n=1, cutoff=0.6)
    if not _shipped_form(text):
        if stem in names:
            return (f"{looked}; the shipped space {stem!r} is named 'spaces/{stem}.yaml' or "
                    f"{stem!r} ({shipped})")
        hint = f"; did you mean 'spaces/{close[0]}.yaml'?" if close else ""
        return f"{looked}{hint} ({shipped}, named like 'spaces/NAME.yaml')"
    # suggest in the form written: 'shufflenett' → 'shufflenet', 'spaces/x.yml' → ...
    same_form = str(PurePath(text).with_name(close[0] + path.name[len(stem):])) if close else ""
    hint = f"; did you mean {same_form!r}?" if close else ""
    return f"{looked}, and no shipped space is named {stem!r}{hint} ({shipped})"


def resolve_space_path(path_or_name: str | os.PathLike[str]) -> Path:
    """The file :func:`load_space` reads for ``path_or_name`` (see :func:`resolve_space`)."""
    return resolve_space(path_or_name).path


def load_space(path_or_name: str | os.PathLike[str]) -> SearchSpace:
    """Load a space from a YAML file or a shipped space (see :func:`resolve_space`).

    The space's ``source_path`` is the absolute file read and ``source_kind`` ``"shipped"``
    or ``"user file"``. Errors (missing file, bad YAML, schema violations, impossible
    values, baselines outside the space) raise NaslError with one line naming file, line,
    key and value.
    """
    found = resolve_space(path_or_name)
    try:
        data = found.path.read_bytes()
    except OSError as e:
        raise NaslError(f"{found.source}: cannot read ({e.strerror or e})") from None
    space = loads_space(data, found.source, default_name=found.path.stem,
                        base_dir=found.path.absolute().parent)
    return dataclasses.replace(space, source_path=str(found.path.absolute()),
                               source_kind=found.kind)


def describe_source(space: SearchSpace) -> str:
    """One line saying which file a space came from, e.g. ``space 'shufflenet': shipped
    file /…/nasl/spaces/shufflenet.yaml`` or ``space 'mine': user file /tmp/x/mine.yaml``."""
    return f"space {space.name!r}: {space.origin}"


@functools.lru_cache(maxsize=1)
def _shipped_descriptions() -> tuple[tuple[str, str, str], ...]:
    out = []
    for name in shipped_names():
        path = shipped_dir() / f"{name}.yaml"
        out.append((name, str(path), load_space(path).description))
    return tuple(out)


def list_spaces() -> list[tuple[str, str, str]]:
    """The shipped spaces as ``(name, path, description)``, sorted by name."""
    return list(_shipped_descriptions())
