"""Tabular spaces (``family: table``): candidates are looked up in a table, not trained.

In: a space document whose ``table`` section names the file (relative to the YAML file, or
a shipped table in ``nasl/tables``), the design choices (``choices: [columns]`` or a
``cell: {column, format: nb201}`` string), ``metrics`` (nasl metric → column, ``{device}``
filled from ``device``), optional accuracy ``noise`` (``{std: X}`` or ``{column: C}``) and
``id`` (a column naming each row). Out: a :class:`TableSpace`, sampled like any space, whose
``to_arch(params)`` is the design's :class:`TableRow` (costs, latency, accuracy with seeded
noise). Every problem is one NaslError line naming file, key, value and what is expected.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasl.common.units import size_mb
from nasl.common.vocab import METRICS
from nasl.space.core import SpaceCore
from nasl.space.schema import Param, Proxy, SearchDefaults, Target, Tracking, parse_objectives, parse_section
from nasl.space.tabledata import (
    CELL_FORMATS,
    NB201_EDGES,
    nb201_cell_string,
    nb201_costs,
    parse_nb201_cell,
    read_table,
    shipped_tables,
    tables_dir,
)
from nasl.space.yamlsafe import NOVALUE, Locator, show

TABLE_TOP_KEYS = ("name", "family", "description", "table", "objectives", "budget", "search",
                  "tracking")
TABLE_KEYS = ("file", "choices", "cell", "metrics", "device", "noise", "id")


@dataclass(frozen=True)
class TableSpec:
    """The ``table`` section, resolved: ``path`` is the file read (absolute), ``file`` as
    written; ``metrics`` are (metric, column, scale) with ``{device}`` filled in."""

    file: str
    path: str
    choices: tuple[str, ...] = ()
    cell: tuple[str, str] | None = None  # (column, format)
    metrics: tuple[tuple[str, str, float], ...] = ()
    device: str | None = None
    noise_std: float = 0.0
    noise_column: str | None = None
    id_column: str | None = None
    raw_metrics: tuple[tuple[str, Any], ...] = field(default=(), compare=False)  # as written


@dataclass(frozen=True)
class TableRow:
    """One design of a table: its metric values (mean over duplicate rows), the accuracy
    noise std and the first row it came from (``row == -1``: not in the table)."""

    id: str
    values: Mapping[str, float]
    std: float = 0.0
    row: int = -1
    family: str = "table"

    @property
    def missing(self) -> bool:
        return self.row < 0

    def macs(self) -> float:
        return self.values.get("macs", math.nan)

    def params(self) -> float:
        return self.values.get("params", math.nan)

    def static_costs(self) -> dict[str, float]:
        """The analytic metrics the table gives (``size_mb`` from ``params`` when absent)."""
        out = {m: self.values[m] for m in ("macs", "params", "size_mb") if m in self.values}
        if "params" in out and "size_mb" not in out:
            out["size_mb"] = size_mb(out["params"])
        if "params" in out:
            out["size_int8_mb"] = out["params"] / 2**20  # 1 byte per weight, as nasl.network.cost counts it
        return out

    def accuracy(self, seed: int) -> float:
        """The accuracy as one training run with ``seed`` would give it: the table's value plus
        ``std`` × a standard normal drawn from (seed, row), the same for the same pair."""
        acc = self.values["accuracy"]
        if self.std <= 0:
            return acc
        z = np.random.default_rng([int(seed) % 2**32, self.row]).standard_normal()
        return float(acc + self.std * z)


@dataclass(frozen=True)
class TableSpace(SpaceCore):
    """A search space over the rows of a table (see the module doc); ``table`` is its spec."""

    table: TableSpec | None = None

    @property
    def spec(self) -> TableSpec:
        assert self.table is not None
        return self.table

    def complete(self, params: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        """Check ``params`` against the choices (NaslError naming the key otherwise)."""
        loc = Locator(self.source)
        for k in params:
            if k not in self.by_name:
                raise loc.error(("params", k), NOVALUE, f"unknown choice (expected: {', '.join(self.order)})")
        for p in self.params:
            if p.name not in params or not p.contains(params[p.name]):
                raise loc.error(("params", p.name), params.get(p.name), f"expected {p.describe()}")
        return {p.name: params[p.name] for p in self.params}

    def to_arch(self, params: Mapping[str, Any], *, target: bool = True) -> TableRow:  # type: ignore[override]
        """The design's :class:`TableRow` (``row == -1`` when the table lacks it)."""
        full = self.complete(params)
        key = tuple(str(full[n]) for n in self.order)
        found = index(self.spec).get(key)
        return found or TableRow(id="missing:" + ",".join(key), values={})

    def proxy_arch(self, params: Mapping[str, Any], num_classes: int = 0,  # type: ignore[override]
                   in_channels: int = 3) -> TableRow:
        return self.to_arch(params)

    def min_cost(self, metric: str) -> float:
        """The smallest ``metric`` in the table (``size_mb`` from ``params`` when absent)."""
        rows = index(self.spec).values()
        vals = [r.static_costs().get(metric, r.values.get(metric, math.nan)) for r in rows]
        vals = [v for v in vals if not math.isnan(v)]
        return min(vals) if vals else math.nan

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        table: dict[str, Any] = {"file": s.file if Path(s.path).parent == tables_dir() else s.path}
        if s.cell:
            table["cell"] = {"column": s.cell[0], "format": s.cell[1]}
        else:
            table["choices"] = list(s.choices)
        table["metrics"] = dict(s.raw_metrics)
        if s.device is not None:
            table["device"] = s.device
        if s.noise_column or s.noise_std:
            table["noise"] = {"column": s.noise_column} if s.noise_column else {"std": s.noise_std}
        if s.id_column:
            table["id"] = s.id_column
        return {"name": self.name, "family": "table", "description": self.description,
                "table": table, "objectives": [o.to_yaml() for o in self.objectives],
                "budget": self.budget.to_texts(), "search": self.search.model_dump(),
                **({"tracking": self.tracking.model_dump(exclude_none=True)}
                   if self.tracking is not None and self.tracking.wandb is not None else {})}

    def with_overrides(self, overrides: Mapping[str, Any], *, source: str = "--set") -> TableSpace:
        """The space with ``table.<key>``, ``search.<key>``, ``name`` or ``description`` set."""
        doc = self.to_dict()
        for key, value in overrides.items():
            section, dot, sub = key.partition(".")
            if dot and section in ("table", "search"):
                doc[section] = {**doc[section], sub: value}
            elif key in ("name", "description"):
                doc[key] = value
            else:
                raise Locator(source).error((key,), value, "expected table.<key>, search.<key>, "
                                                           "name or description")
        space = build_table_space(doc, Locator(f"{self.source} (with {source})"),
                                  Path(self.spec.path).parent)
        return dataclasses.replace(space, source_path=self.source_path, source_kind=self.source_kind)


@functools.lru_cache(maxsize=8)
def index(spec: TableSpec) -> dict[tuple[str, ...], TableRow]:
    """Design (choice values as text, in order) → its :class:`TableRow`, for the whole table.
    Duplicate designs (e.g. one design trained with several seeds) are averaged; rows with an
    empty metric cell (e.g. a past run's rejected or failed trials) are left out."""
    t = read_table(spec.path)
    keys = _keys(spec, t.columns)
    nums = {m: [float(v) * scale if v.strip() else math.nan for v in t.columns[col]]
            for m, col, scale in spec.metrics}
    std = t.columns[spec.noise_column] if spec.noise_column else None
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, k in enumerate(keys):
        if not any(math.isnan(v[i]) for v in nums.values()):
            groups.setdefault(k, []).append(i)
    out = {}
    for k, rows in groups.items():
        values = {m: sum(v[i] for i in rows) / len(rows) for m, v in nums.items()}
        if spec.cell and spec.cell[1] == "nb201":
            values = {**nb201_costs(k), **values}
        sd = float(std[rows[0]] or 0) if std is not None else spec.noise_std
        rid = t.columns[spec.id_column][rows[0]] if spec.id_column else str(rows[0])
        out[k] = TableRow(id=rid, values=values, std=sd, row=rows[0])
    return out


def _keys(spec: TableSpec, columns: Mapping[str, list[str]]) -> list[tuple[str, ...]]:
    if spec.cell is None:
        return list(zip(*(columns[c] for c in spec.choices), strict=True))
    return [parse_nb201_cell(s) for s in columns[spec.cell[0]]]


# ---------------------------------------------------------------- validation


def build_table_space(data: Mapping[str, Any], loc: Locator, base_dir: Path | None = None,
                      *, default_name: str = "space") -> TableSpace:
    """Validate a ``family: table`` document → :class:`TableSpace` (the table is read and
    checked: columns present, numbers numeric, cell strings parsed); NaslError otherwise.
    ``base_dir``: where a relative ``table.file`` is looked for first (the YAML's folder)."""
    from nasl.space.build import TOP_KEYS
    from nasl.space.schema import unknown_key

    for k in data:
        if k in TOP_KEYS and k not in TABLE_TOP_KEYS:
            raise loc.error((k,), NOVALUE, f"not used by family table (expected only: "
                                           f"{', '.join(TABLE_TOP_KEYS)})")
        if k not in TABLE_TOP_KEYS:
            raise unknown_key(loc, (), k, TABLE_TOP_KEYS)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise loc.error(("name",), name, "expected a name of letters, digits, '_', '.', '-'")
    description = data.get("description", "") or ""
    sec = data.get("table")
    if not isinstance(sec, Mapping):
        raise loc.error(("table",), sec if sec is not None else NOVALUE,
                        "expected a mapping with file, choices or cell, metrics")
    for k in sec:
        if k not in TABLE_KEYS:
            raise unknown_key(loc, ("table",), k, TABLE_KEYS)
    spec = _parse_spec(sec, loc, base_dir or Path.cwd())
    objectives = parse_objectives(data.get("objectives") or
                                  [{m: "max" if m == "accuracy" else "min"} for m, _, _ in spec.metrics
                                   if m in ("accuracy", "latency_ms")], loc)
    have = {m for m, _, _ in spec.metrics} | ({"macs", "params", "size_mb"} if spec.cell else set())
    for i, o in enumerate(objectives):
        if o.metric not in have:
            raise loc.error(("objectives", i), o.metric, f"not a metric of this table "
                                                         f"(table.metrics gives: {', '.join(sorted(have))})")
    from nasl.space.build import parse_budget_section
    from nasl.space.schema import table_search_doc  # the tabular default sampler: pick

    budget = parse_budget_section(data.get("budget"), loc)
    for m in budget:
        if m not in have:
            raise loc.error(("budget", m), NOVALUE, f"not a metric of this table "
                                                    f"(table.metrics gives: {', '.join(sorted(have))})")
    search = parse_section(SearchDefaults, table_search_doc(data.get("search"), objectives), ("search",), loc)
    tracking = parse_section(Tracking, data.get("tracking"), ("tracking",), loc)
    rows = _check_rows(spec, loc)
    params = _params(spec, rows)
    return TableSpace(name, "table", str(description), Target(), Proxy(epochs=1), objectives,
                      budget, tuple(params), {}, {}, search,
                      tuple(p.name for p in params), loc.source, tracking, table=spec)


def _find_file(file: Any, loc: Locator, base_dir: Path) -> Path:
    if not isinstance(file, str) or not file:
        raise loc.error(("table", "file"), file if file is not None else NOVALUE,
                        "expected the table's CSV file (.csv or .csv.gz), relative to this YAML "
                        f"file or a shipped table ({', '.join(shipped_tables())})")
    p = Path(file).expanduser()
    for cand in ((p,) if p.is_absolute() else (base_dir / p, tables_dir() / p)):
        if cand.is_file():
            return cand.absolute()
    raise loc.error(("table", "file"), file, f"no such file (looked in {base_dir} and the shipped "
                                             f"tables: {', '.join(shipped_tables())})")


def _parse_spec(sec: Mapping[str, Any], loc: Locator, base_dir: Path) -> TableSpec:
    path = _find_file(sec.get("file"), loc, base_dir)
    try:
        cols = read_table(path).columns
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise loc.error(("table", "file"), sec.get("file"), f"cannot read the table: {e}") from None
    fname = path.name

    def column(key: tuple[Any, ...], col: Any) -> str:
        if not isinstance(col, str) or col not in cols:
            raise loc.error(("table", *key), col, f"no such column in {fname}; expected one of: "
                                                  f"{', '.join(cols)}")
        return col

    cell, choices = sec.get("cell"), sec.get("choices")
    if (cell is None) == (choices is None):
        raise loc.error(("table",), NOVALUE, "expected exactly one of 'choices' (a list of "
                                             "columns) or 'cell' ({column, format})")
    cell_t: tuple[str, str] | None = None
    if cell is not None:
        if not isinstance(cell, Mapping) or set(cell) - {"column", "format"}:
            raise loc.error(("table", "cell"), cell, "expected {column: COLUMN, format: nb201}")
        fmt = cell.get("format", "nb201")
        if fmt not in CELL_FORMATS:
            raise loc.error(("table", "cell", "format"), fmt, f"expected one of: {', '.join(CELL_FORMATS)}")
        cell_t = (column(("cell", "column"), cell.get("column")), str(fmt))
    elif not isinstance(choices, list) or not choices:
        raise loc.error(("table", "choices"), choices, "expected a non-empty list of columns")
    choice_cols = tuple(column(("choices", i), c) for i, c in enumerate(choices or []))
    device = sec.get("device")
    if device is not None and not isinstance(device, str):
        raise loc.error(("table", "device"), device, "expected text (the latency column's suffix)")
    raw = sec.get("metrics")
    if not isinstance(raw, Mapping) or not raw:
        raise loc.error(("table", "metrics"), raw if raw is not None else NOVALUE,
                        "expected a mapping of nasl metric → column, e.g. {accuracy: acc, "
                        "latency_ms: latency_ms_{device}}")
    metrics = []
    for m, v in raw.items():
        if m not in METRICS:
            from nasl.space.schema import unknown_key

            raise unknown_key(loc, ("table", "metrics"), m, METRICS)
        spec_v = v if isinstance(v, Mapping) else {"column": v}
        if set(spec_v) - {"column", "scale"}:
            raise loc.error(("table", "metrics", m), v, "expected COLUMN or {column: COLUMN, scale: X}")
        col = spec_v.get("column")
        if isinstance(col, str) and "{device}" in col:
            options = _devices(col, cols)
            if device not in options:
                raise loc.error(("table", "device"), device if device is not None else NOVALUE,
                                f"expected one of: {', '.join(options)} (columns {col})")
            col = col.replace("{device}", str(device))
        scale = spec_v.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise loc.error(("table", "metrics", m, "scale"), scale, "expected a positive number")
        metrics.append((str(m), column(("metrics", m), col), float(scale)))
    if "accuracy" not in dict((m, c) for m, c, _ in metrics):
        raise loc.error(("table", "metrics"), NOVALUE, "expected an 'accuracy' column (the metric "
                                                       "looked up instead of trained)")
    noise = sec.get("noise") or {}
    if not isinstance(noise, Mapping) or set(noise) - {"std", "column"} or len(noise) > 1:
        raise loc.error(("table", "noise"), noise, "expected {std: X} (accuracy std, same units as "
                                                   "accuracy after scale) or {column: COLUMN}")
    std = noise.get("std", 0.0)
    if isinstance(std, bool) or not isinstance(std, (int, float)) or std < 0:
        raise loc.error(("table", "noise", "std"), std, "expected a number >= 0")
    noise_col = column(("noise", "column"), noise["column"]) if "column" in noise else None
    id_col = column(("id",), sec["id"]) if sec.get("id") is not None else None
    return TableSpec(str(sec["file"]), str(path), choice_cols, cell_t, tuple(metrics),
                     device, float(std), noise_col, id_col, tuple((str(k), v) for k, v in raw.items()))


def _devices(pattern: str, cols: Mapping[str, Any]) -> list[str]:
    head, _, tail = pattern.partition("{device}")
    return [c[len(head):len(c) - len(tail)] for c in cols
            if c.startswith(head) and c.endswith(tail) and len(c) > len(head) + len(tail)]


def _check_rows(spec: TableSpec, loc: Locator) -> dict[tuple[str, ...], TableRow]:
    cols = read_table(spec.path).columns
    fname = Path(spec.path).name
    if spec.cell:
        for i, s in enumerate(cols[spec.cell[0]]):
            try:
                parse_nb201_cell(s)
            except ValueError as e:
                raise loc.error(("table", "cell", "column"), spec.cell[0],
                                f"{fname} row {i + 1}: {show(s, 90)}: {e}") from None
    numeric = [(("metrics", m), c) for m, c, _ in spec.metrics]
    numeric += [(("noise", "column"), spec.noise_column)] if spec.noise_column else []
    for key, c in numeric:
        for i, v in enumerate(cols[c]):
            try:
                ok = not v.strip() or math.isfinite(float(v))  # empty: the row is left out
            except ValueError:
                ok = False
            if not ok:
                raise loc.error(("table", *key), c, f"{fname} row {i + 1}: {v!r} is not a finite number")
    rows = index(spec)
    if not rows:
        raise loc.error(("table", "file"), Path(spec.path).name, "no row has a value in every metric column")
    return rows


def _params(spec: TableSpec, rows: Mapping[tuple[str, ...], TableRow]) -> list[Param]:
    names = NB201_EDGES if spec.cell else spec.choices
    values: list[list[str]] = [[] for _ in names]
    for key in rows:
        for vals, v in zip(values, key, strict=True):
            if v not in vals:
                vals.append(v)
    return [Param(n, "choices", tuple(sorted(v, key=_order))) for n, v in zip(names, values, strict=True)]


def _order(text: str) -> tuple[int, float, str]:
    """Numbers in numeric order first, then text in alphabetical order."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


__all__ = ["TableRow", "TableSpace", "TableSpec", "build_table_space", "index", "nb201_cell_string"]
