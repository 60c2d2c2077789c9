"""Finding and reading search spaces: a file path, or the bare name of a shipped space.

The shipped spaces are package data in ``nasl/spaces/*.yaml``; ``load_space('shufflenet')``
works from any directory after a plain install.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

from nasl.errors import NaslError
from nasl.space.model import SearchSpace, build_space
from nasl.space.schema import did_you_mean
from nasl.space.yamlsafe import Locator, read_yaml

SUFFIXES = (".yaml", ".yml")


def shipped_dir() -> Path:
    """The folder holding the shipped spaces (``nasl/spaces``)."""
    return Path(str(resources.files("nasl").joinpath("spaces")))


def shipped_names() -> list[str]:
    """Names of the shipped spaces, sorted."""
    d = shipped_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def loads_space(text: str | bytes, source: str = "<string>", *,
                default_name: str = "space") -> SearchSpace:
    """Parse and validate YAML text → SearchSpace (NaslError naming ``source``)."""
    loc = Locator(source)
    return build_space(read_yaml(text, loc), loc, default_name=default_name)


def resolve_space_path(path_or_name: str | os.PathLike[str]) -> Path:
    """An existing file, else the shipped space of that bare name (``'shufflenet'`` or
    ``'shufflenet.yaml'``); NaslError listing the shipped ones otherwise."""
    text = os.fspath(path_or_name)
    path = Path(text).expanduser()
    if path.is_dir():
        raise NaslError(f"{text}: is a directory; expected a search-space YAML file or one "
                        f"of the shipped spaces: {', '.join(shipped_names())}")
    if path.is_file():
        return path
    stem = path.name
    for suffix in SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    names = shipped_names()
    bare = path.parent == Path(".") and not text.startswith(".")
    if bare and stem in names:
        return shipped_dir() / f"{stem}.yaml"
    hint = did_you_mean(stem, names) if bare else ""
    raise NaslError(f"no such space file {text!r} (and no shipped space named {stem!r}"
                    f"{hint}; shipped: {', '.join(names) or 'none'})")


def load_space(path_or_name: str | os.PathLike[str]) -> SearchSpace:
    """Load a space from a YAML file or by the bare name of a shipped space.

    Errors (missing file, bad YAML, schema violations, impossible values, baselines
    outside the space) raise NaslError with one line naming file, line, key and value.
    """
    path = resolve_space_path(path_or_name)
    shipped = path.parent == shipped_dir()
    source = path.name if shipped else os.fspath(path_or_name)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise NaslError(f"{source}: cannot read ({e.strerror or e})") from None
    return loads_space(data, source, default_name=path.stem)


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
