"""SearchSpace, the public space class: the model of :mod:`nasl.space.core` plus building
from a document and re-validating with overrides.

In: a plain document as read from YAML (see ``nasl/spaces/*.yaml`` and docs/spaces.md for the
schema) and a :class:`~nasl.space.yamlsafe.Locator` naming its source. Out: a frozen
:class:`SearchSpace` whose ``sample(trial)`` returns a params dict and whose
``to_arch(params)`` builds the network; ``with_overrides`` gives a re-validated variant.

Layers (each imports only those above it): ``yamlsafe``, ``choices`` → ``schema`` →
``core`` → ``build`` (validation) → ``model`` → ``describe``, ``load``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasl.common.errors import NaslError
from nasl.families import FAMILIES
from nasl.space.build import validate_space
from nasl.space.choices import list_typed, param_name_ok, same_value, split_list
from nasl.space.core import RandomTrial, SpaceCore
from nasl.space.schema import did_you_mean, plain
from nasl.space.yamlsafe import Locator, read_yaml

__all__ = ["RandomTrial", "SearchSpace", "build_space"]  # RandomTrial: its old home, kept


@dataclass(frozen=True)
class SearchSpace(SpaceCore):
    """A validated search space. Build with :func:`nasl.space.load_space` (a file or shipped
    name), :func:`nasl.space.loads_space` (YAML text) or :func:`build_space` (a document).

    ``params`` are the searched parameters in declared order, ``fixed`` the fixed design
    choices, ``baselines`` the papers' networks as complete params dicts.
    """

    def with_overrides(self, overrides: Mapping[str, Any], *, source: str = "--set"
                       ) -> SearchSpace:
        """The space with settings or design choices overridden, re-validated.

        Keys: ``target.<key>``, ``proxy.<key>``, ``search.<key>``, ``name``,
        ``description``, ``objectives``, or a parameter / design-choice name (which fixes
        it; baselines with another value for it are dropped). Text values are read as
        YAML scalars or flow lists (``'3'`` → 3, ``'[4,8,4]'`` or ``'4,8,4'``).
        """
        doc = self.to_dict()
        fam = FAMILIES[self.family]
        loc = Locator(source)
        fixed_now: dict[str, Any] = {}
        for key, raw in overrides.items():
            value = _cli_value(raw)
            section, dot, sub = key.partition(".")
            if dot and section in ("target", "proxy", "search"):
                doc[section] = {**(doc.get(section) or {}), sub: value}
            elif key in ("name", "description", "objectives"):
                doc[key] = value
            elif key in self.order or param_name_ok(fam, key):
                if isinstance(value, str) and list_typed(fam, key):
                    value = split_list(value)
                if key not in self.order and any(n.startswith(f"{key}[") for n in self.order):
                    entries = self.expand_lists({key: value}, (key,), loc)
                else:
                    entries = {key: value}
                for k, v in entries.items():
                    doc["params"][k] = v
                    fixed_now[k] = v
            else:
                options = [*self.order, *fam.defaults, "target.*", "proxy.*", "search.*"]
                raise loc.error((key,), raw, "unknown setting or design choice"
                                             f"{did_you_mean(key, options)}")
        for name in list(doc["params"]):  # conditions on a now-fixed parameter: decided
            spec = doc["params"][name]
            when = spec.get("when") if isinstance(spec, dict) else None
            for ref in [r for r in (when or {}) if r in fixed_now]:
                v = fixed_now[ref]
                if any(same_value(plain(a), plain(v)) or a == v for a in when.pop(ref)):
                    continue
                del doc["params"][name]  # can never be active
                break
            else:
                if isinstance(spec, dict) and "when" in spec and not spec["when"]:
                    del spec["when"]
        doc["baselines"] = {
            n: b for n, b in doc["baselines"].items()
            if all(k not in b or same_value(plain(b[k]), plain(v)) or b[k] == v
                   for k, v in fixed_now.items())}
        space = build_space(doc, Locator(f"{self.source} (with {source})"))
        return dataclasses.replace(space, source=self.source, source_path=self.source_path,
                                   source_kind=self.source_kind)


def build_space(data: Any, loc: Locator, *, default_name: str = "space") -> SearchSpace:
    """Validate a plain document (as read from YAML) → SearchSpace; NaslError otherwise
    (one line naming ``loc``'s file, the line, key path, value and what is expected)."""
    return validate_space(data, loc, SearchSpace, default_name=default_name)


def _cli_value(raw: Any) -> Any:
    """A ``--set`` value: text read as a YAML scalar or flow list where it parses."""
    if not isinstance(raw, str):
        return raw
    try:
        return read_yaml(raw, Locator("--set"))
    except NaslError:
        return raw
