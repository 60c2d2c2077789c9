"""Safe, bounded YAML reading that remembers the line of every key.

In: YAML text. Out: plain Python values (dict, list, str, int, float, bool, None) and a
map from key paths (``('params', 'groups', 'choices', 0)``) to 1-based line numbers.

Only the YAML core schema is accepted: any other tag (``!!python/object``, ``!!binary``,
``!custom``) is an error and nothing is ever executed. Aliases are allowed but the
document may expand to at most :data:`MAX_NODES` values (a "billion laughs" file stops
there in milliseconds); recursive aliases, duplicate keys and non-text keys are errors.
Dates stay text. Merge keys (``<<: *defaults``) work.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nasl.common.errors import NaslError

KeyPath = tuple[str | int, ...]

MAX_NODES = 20_000
MAX_BYTES = 1_000_000
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("null", "bool", "int", "float", "str")}
_TEXT_TAGS = {f"{_CORE}timestamp"}  # implicit dates: kept as the text written
_CTOR = SafeConstructor()


def format_path(path: KeyPath) -> str:
    """``('params', 'groups', 'choices', 0)`` → ``'params.groups.choices[0]'``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def show(value: Any, limit: int = 70) -> str:
    """A short, YAML-like rendering of a value for error messages."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Locator:
    """Where values came from: a source name and key path → line; makes one-line errors."""

    source: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def where(self, path: KeyPath) -> str:
        line = self.line(path)
        return f"{self.source}:{line}" if line is not None else self.source

    def error(self, path: KeyPath, value: Any, expected: str) -> NaslError:
        """``<file>:<line>: <key.path>: <value> — <expected>`` as a NaslError."""
        shown = "" if value is _NOVALUE else f" {show(value)} —"
        return NaslError(f"{self.where(path)}: {format_path(path)}:{shown} {expected}")

    def problem(self, expected: str, line: int | None = None) -> NaslError:
        """An error about the whole file (no key path)."""
        where = f"{self.source}:{line}" if line is not None else self.source
        return NaslError(f"{where}: {expected}")


_NOVALUE = object()
NOVALUE: Any = _NOVALUE  # pass as ``value`` when there is no value to show


def _tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


class _Builder:
    def __init__(self, loc: Locator) -> None:
        self.loc = loc
        self.count = 0
        self.stack: set[int] = set()

    def build(self, node: Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.loc.problem(
                f"the document expands to more than {MAX_NODES} values (aliases such as "
                f"*name repeat whole subtrees); a search space is far smaller",
                node.start_mark.line + 1)
        if id(node) in self.stack:
            raise self.loc.error(path, NOVALUE, "recursive alias: a value contains itself")
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (f"{_CORE}seq", f"{_CORE}map"):
            raise self._bad_tag(node, path)
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.loc.lines.setdefault((*path, i), item.start_mark.line + 1)
                    out.append(self.build(item, (*path, i)))
                return out
            assert isinstance(node, MappingNode)
            return self._mapping(node, path)
        finally:
            self.stack.discard(id(node))

    def _bad_tag(self, node: Node, path: KeyPath) -> NaslError:
        return self.loc.error(path, NOVALUE,
                              f"YAML tag {_tag(node.tag)!r} is not allowed; only plain YAML "
                              f"(mappings, lists, text, numbers, true/false, null) is read "
                              f"and nothing is ever executed")

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise self._bad_tag(node, path)
        try:
            return _CTOR.yaml_constructors[node.tag](_CTOR, node)
        except (ValueError, yaml.YAMLError) as e:
            raise self.loc.error(path, node.value, f"not a valid {_tag(node.tag)} ({e})") from None

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_CORE}merge":
                value = self.build(value_node, path)
                parts = value if isinstance(value, list) else [value]
                if not all(isinstance(p, Mapping) for p in parts):
                    raise self.loc.error(path, NOVALUE, "a merge key '<<' needs a mapping or "
                                                        "a list of mappings")
                for part in parts:
                    for k, v in part.items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, ScalarNode):
                raise self.loc.problem(f"{format_path(path)}: a key must be plain text, "
                                       f"not a list or mapping", key_node.start_mark.line + 1)
            key = self.build(key_node, path)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise self.loc.problem(f"{format_path(path)}: key {show(key)} must be text "
                                       f"(YAML reads it as {type(key).__name__}); quote it",
                                       line)
            if key in out:
                raise self.loc.problem(f"{format_path((*path, key))}: given twice (first on "
                                       f"line {first_line[key]}); keep one", line)
            first_line[key] = line
            self.loc.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        for k, v in merged.items():
            out.setdefault(k, v)
        return out


def read_yaml(text: str | bytes, loc: Locator) -> Any:
    """Parse one YAML document safely into plain values; fills ``loc.lines``.

    Raises NaslError (naming ``loc.source`` and the line) for text that is not YAML,
    disallowed tags, too many values, recursive aliases, duplicate or non-text keys.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise loc.problem(f"file is {len(text)} bytes; a search space is at most "
                              f"{MAX_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise loc.problem(f"not UTF-8 text (byte {e.start}); expected a YAML file") from None
    if len(text) > MAX_BYTES:
        raise loc.problem(f"text is {len(text)} characters; a search space is at most "
                          f"{MAX_BYTES}")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(s) for s in (e.context, e.problem) if s)
        raise loc.problem(f"not valid YAML: {what}", line) from None
    except yaml.YAMLError as e:
        raise loc.problem(f"not valid YAML: {e}") from None
    except RecursionError:
        raise loc.problem("not usable YAML: nested too deeply") from None
    if node is None:
        return None
    loc.lines[()] = node.start_mark.line + 1
    try:
        return _Builder(loc).build(node, ())
    except RecursionError:
        raise loc.problem("not usable YAML: nested too deeply") from None


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """``"; did you mean 'groups'?"`` or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_key(loc: Locator, path: KeyPath, key: str, options: Sequence[str]) -> NaslError:
    """The error for a key that is not allowed at ``path``."""
    return loc.error((*path, key), NOVALUE,
                     f"unknown key{did_you_mean(key, options)} (expected one of: "
                     f"{', '.join(options)})")
