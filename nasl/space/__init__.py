"""Search spaces: YAML → validated SearchSpace → Optuna define-by-run params → ArchConfig.

In: a YAML file, or a shipped space (``nasl/spaces/*.yaml``) by name or as
``spaces/<name>.yaml`` / ``search_spaces/<name>.yaml`` from any directory. Out: a
:class:`SearchSpace` (``sample(trial)``, ``to_arch(params)``, ``baselines``, ``budget``,
``to_yaml()``) plus summaries for the CLI. Bad input raises :class:`nasl.common.errors.NaslError`
with one line naming the file, line, key path, value and what is expected.
Torch is never imported here.
"""

from nasl.common.units import Budgets
from nasl.space.choices import RESOLUTION
from nasl.space.describe import (
    BaselineRow,
    ParamRow,
    Range,
    SpaceSummary,
    costs,
    describe,
    min_cost,
    param_rows,
    sample_configs,
    sample_params,
    space_size,
    unsatisfiable_budget_message,
)
from nasl.space.load import (
    SpaceFile,
    describe_source,
    list_spaces,
    load_space,
    loads_space,
    resolve_space,
    resolve_space_path,
    shipped_dir,
    shipped_names,
)
from nasl.space.model import RandomTrial, SearchSpace, build_space
from nasl.space.schema import Objective, Param, Proxy, SearchDefaults, Target

__all__ = [
    "RESOLUTION",
    "BaselineRow",
    "Budgets",
    "Objective",
    "Param",
    "ParamRow",
    "Proxy",
    "RandomTrial",
    "Range",
    "SearchDefaults",
    "SearchSpace",
    "SpaceFile",
    "SpaceSummary",
    "Target",
    "build_space",
    "costs",
    "describe",
    "describe_source",
    "list_spaces",
    "load_space",
    "loads_space",
    "min_cost",
    "param_rows",
    "resolve_space",
    "resolve_space_path",
    "sample_configs",
    "sample_params",
    "shipped_dir",
    "shipped_names",
    "space_size",
    "unsatisfiable_budget_message",
]
