"""What a search was asked to do: :class:`SearchOptions`, their validation, the resume rule,
and the resolved :class:`~nasl.search.objective.Settings`.

In: a search space and the user's options (from the CLI or Python). Out: validated options
(``NaslError`` naming the option, the value and what is expected) and the settings every
trial runs with. The resume rule lives here, so ``run_search(..., SearchOptions(resume=True,
name=...))`` from Python continues a run exactly as ``nasl search --resume`` does.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.vocab import (
    DEFAULT_PRESCREEN_PROXY,
    DEFAULT_SCHEDULER,
    DIRECTIONS,
    DTYPES,
    PRECISIONS,
    RUNTIMES,
    SAMPLERS,
)
from nasl.decide.stats import CORRECTIONS
from nasl.run import results
from nasl.search.objective import Settings
from nasl.training.recipes import RECIPES

#: env.json keys the resume rule re-uses, when the option was not given again.
RESUMED = ("epochs", "data", "sampler", "seed", "trials", "seeds", "confirm_seeds", "runtime",
           "confirm_budget", "confirm_epochs", "confirm_recipe", "recipe",
           "target_remote", "token_file", "target_required")


@dataclass
class SearchOptions:
    """What the user asked for (CLI flags override the space's ``search``/``proxy`` sections)."""

    name: str | None = None
    runs_dir: Path = Path("runs")
    budgets: dict[str, float] = field(default_factory=dict)
    trials: int | None = None
    sampler: str | None = None
    seed: int | None = None
    epochs: int | None = None
    data: str | None = None
    early_stop: bool = True
    early_stop_margin: float = 0.02
    timeout: float | None = None  # seconds
    resume: bool = False
    storage: str | None = None
    device: str | None = None
    threads: int | None = None
    train_device: str | None = None  # auto | cpu | cuda[:i] | mps (default: the space's proxy.device)
    precision: str | None = None  # auto | fp32 | bf16 | fp16 (default: the space's proxy.precision)
    compile: bool = False  # torch.compile each trial's training (compile time recorded apart)
    trials_per_device: int | str = 1  # trials at once on each device (worker processes); "auto": probed
    devices: str | None = None  # "0,1" or "cpu": the devices of --trials-per-device
    join: bool = False  # a worker process joining the run's study (nasl.search.workers)
    adapt_threads: bool = True  # step down to 1 thread while the machine is busy (docs/search.md)
    final_repeats: int = 100
    seeds: int | None = None  # seeds per trial (default: the space's search.seeds, else 1)
    confirm_seeds: int | None = None  # fresh seeds per confirmed design at first (0: no confirmation)
    confirm_max: int | None = None  # designs confirmed at most (default: budget // 3, >= 3)
    confirm_budget: int | None = None  # trainings the confirmation may spend (default 8)
    confirm_epochs: int | None = None  # epochs of a confirmation training (default 3 x --epochs)
    confirm_recipe: str | None = None  # a second recipe the claims are checked under
    recipe: str | None = None  # proxy recipe (default: the space's proxy.recipe and its keys)
    margin: float = 1.0  # non-inferiority margin δ, accuracy points
    alpha: float = 0.05  # family-wise error (Holm) or false discovery rate (bh) of the claims
    correction: str = "holm"  # holm | bh
    runtime: str | None = None  # latency runtime (default: the space's target.runtime)
    target_remote: str | None = None  # HOST:PORT of `nasl latency serve` (default: target.remote)
    token_file: str | None = None  # its shared secret (default: the space's target.token_file)
    target_required: bool | None = None  # stop when the remote target is gone (target.required)
    scheduler: str = DEFAULT_SCHEDULER  # auto | none | front | asha | asha-strict (search.schedulers)
    reduction_factor: float | None = None  # asha's eta (default 3)
    grace_period: int | None = None  # asha's first rung, in epochs (default 1)
    predictor: bool = True
    prescreen: int = 0  # N: pre-screen N feasible designs per trial with a zero-cost proxy
    prescreen_proxy: str = DEFAULT_PRESCREEN_PROXY  # zero-cost proxy of the pre-screen
    max_rejections: int = 2000
    show_progress: bool = True
    baselines: bool = True
    wandb: dict[str, Any] | None = None


@dataclass
class SearchOutcome:
    """What a search did: counts, the front rows, wall time and where it wrote."""

    run: results.RunDir
    trained: int
    rejected: int
    pruned: int
    failed: int
    front: list[dict[str, Any]]
    seconds: float
    interrupted: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def default_name(space_name: str) -> str:
    """``<space>-<YYYYmmdd-HHMMSS>``: the run name when none is given."""
    return f"{space_name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def objective_pairs(space: Any) -> tuple[tuple[str, str], ...]:
    """The space's objectives as (metric, 'maximize'|'minimize') pairs, Optuna's spelling."""
    return tuple((o.metric, DIRECTIONS[o.direction]) for o in space.objectives)


def choice_names(space: Any) -> list[str]:
    """Design-choice columns of trials.csv: the sampled parameters, then the fixed ones."""
    names = list(space.order)
    return names + [k for k in space.fixed if k not in names]


def validate(opts: SearchOptions) -> None:
    """Check option values that do not depend on the space (``NaslError`` if one is bad)."""
    from nasl.common import guards

    if opts.resume and not opts.name:
        raise NaslError("--resume needs --name NAME: the run to continue (see runs/)")
    if opts.name is not None:
        guards.check_run_name(opts.name)
    if opts.seed is not None:
        guards.check_seed(opts.seed)
    if opts.threads is not None:
        guards.check_int(opts.threads, "--threads", 1, 1024)
    if opts.storage is not None:
        guards.check_storage_url(opts.storage)
    if opts.trials is not None and opts.trials < 1:
        raise NaslError(f"--trials {opts.trials}: expected an integer >= 1")
    if opts.epochs is not None and opts.epochs < 1:
        raise NaslError(f"--epochs {opts.epochs}: expected an integer >= 1")
    if not 0 < opts.early_stop_margin < 1:
        raise NaslError(f"--early-stop-margin {opts.early_stop_margin}: expected a number "
                        "between 0 and 1 (an accuracy gap, e.g. 0.05)")
    if opts.sampler is not None and opts.sampler not in SAMPLERS:
        raise NaslError(f"--sampler {opts.sampler!r}: expected one of {', '.join(SAMPLERS)}")
    for flag, v, low in (("--seeds", opts.seeds, 1), ("--confirm-seeds", opts.confirm_seeds, 0),
                         ("--confirm-max", opts.confirm_max, 0)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            raise NaslError(f"{flag} {v}: expected an integer >= {low}")
    for flag, v, low in (("--confirm-budget", opts.confirm_budget, 0),
                         ("--confirm-epochs", opts.confirm_epochs, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            raise NaslError(f"{flag} {v}: expected an integer >= {low}")
    if opts.recipe is not None and opts.recipe not in RECIPES:
        raise NaslError(f"--recipe {opts.recipe!r}: expected one of {', '.join(RECIPES)}")
    if opts.confirm_recipe is not None and opts.confirm_recipe not in RECIPES:
        raise NaslError(f"--confirm-recipe {opts.confirm_recipe!r}: expected one of "
                        f"{', '.join(RECIPES)}")
    if not 0 <= opts.margin < 100:
        raise NaslError(f"--margin {opts.margin}: expected accuracy points in [0, 100), e.g. 1")
    if not 0 < opts.alpha < 0.5:
        raise NaslError(f"--alpha {opts.alpha}: expected a level between 0 and 0.5, e.g. 0.05")
    if opts.correction not in CORRECTIONS:
        raise NaslError(f"--correction {opts.correction!r}: expected one of {', '.join(CORRECTIONS)}")
    if isinstance(opts.prescreen, bool) or not isinstance(opts.prescreen, int) \
            or opts.prescreen < 0:
        raise NaslError(f"--prescreen {opts.prescreen}: expected an integer >= 0 (candidates "
                        "scored per trained trial; 0 = off)")
    if opts.runtime is not None and opts.runtime not in RUNTIMES:
        raise NaslError(f"--runtime {opts.runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if opts.precision is not None and opts.precision not in PRECISIONS:
        raise NaslError(f"--precision {opts.precision!r}: expected one of {', '.join(PRECISIONS)}")
    if opts.timeout is not None and not opts.timeout > 0:
        raise NaslError(f"--timeout {opts.timeout}: expected a positive duration")


def will_resume(opts: SearchOptions) -> bool:
    """Whether ``opts`` continue a run whose folder holds its own space (then no space is needed)."""
    validate(opts)
    return bool(opts.resume and (Path(opts.runs_dir) / str(opts.name) / "space.yaml").is_file())


def resume_space(space: Any, opts: SearchOptions) -> tuple[Any, SearchOptions]:
    """The resume rule: continue a run with the space, budgets and settings it was started with.

    With ``opts.resume`` and a run folder ``runs_dir/name`` holding ``space.yaml`` and
    ``env.json``, the saved space (budgets included) replaces ``space`` and the saved
    epochs, data, sampler, seed and trial count fill every option not given again.
    Otherwise ``(space, opts)`` are returned unchanged.
    """
    validate(opts)
    if not opts.resume:
        return space, opts
    run = results.RunDir(Path(opts.runs_dir) / str(opts.name))
    if not run.space_yaml.is_file():
        return space, opts  # joining a study elsewhere (--storage), or nothing to resume
    from nasl.space import load_space

    env = run.read_env()
    saved = load_space(run.space_yaml)
    fill = {k: env[k] for k in RESUMED if getattr(opts, k) is None and env.get(k) is not None}
    return saved, dataclasses.replace(opts, **fill)


def recipe_of(space: Any, opts: SearchOptions) -> Any:
    """The proxy recipe of a run (:class:`nasl.training.recipes.Recipe`): ``--recipe`` when given,
    else the space's ``proxy.recipe`` with the keys its ``proxy:`` section sets."""
    from nasl.training.recipes import resolve

    return resolve(opts.recipe) if opts.recipe else space.proxy.recipe_of()


def resolve_settings(space: Any, opts: SearchOptions) -> Settings:
    """Space defaults + option overrides → :class:`Settings`."""
    from nasl.training.train import TrainConfig

    proxy, target = space.proxy, space.target
    remote = remote_target(space, opts)
    seed = opts.seed if opts.seed is not None else space.search.seed
    train_device, precision = training_device(space, opts)
    train = TrainConfig(**{**proxy.train_kwargs(), **recipe_of(space, opts).train_kwargs(),
                           **({"epochs": opts.epochs} if opts.epochs else {}),
                           "precision": precision, "compile": opts.compile})
    return Settings(
        objectives=objective_pairs(space),
        budgets={**dict(space.budget), **opts.budgets},
        data=opts.data or proxy.dataset,
        proxy_resolution=proxy.resolution,
        val_fraction=proxy.val_fraction,
        subset=proxy.subset,
        val_subset=proxy.val_subset,
        holdout_fraction=proxy.holdout_fraction if (opts.confirm_seeds or 0) > 0
        and (opts.confirm_budget or 0) > 0 else 0.0,
        train=train,
        device=opts.device or target.device,
        latency_batch=target.batch_size,
        dtype=DTYPES.get(target.dtype, target.dtype),
        threads=opts.threads,
        train_device=train_device,
        adapt_threads=opts.adapt_threads,
        seed=seed,
        early_stop=opts.early_stop,
        early_stop_margin=opts.early_stop_margin,
        seeds=opts.seeds or 1,
        runtime="onnxruntime" if remote else opts.runtime or getattr(target, "runtime", "torch"),
        remote=remote,
        ray_resource=getattr(target, "ray_resource", None),
    )


def training_device(space: Any, opts: SearchOptions) -> tuple[str, str]:
    """(device, precision) trials train with, as asked (``--train-device`` / ``--precision``,
    else the space's ``proxy.device`` / ``proxy.precision``), checked here: ``NaslError`` in one
    line when the device is not on this machine (e.g. ``cuda`` without a GPU) or the precision
    cannot run there. Each process resolves ``auto`` again where it trains (a Ray worker: on
    the GPU Ray gave it)."""
    from nasl.hardware.accel import resolve_precision, resolve_train_device

    device = opts.train_device or space.proxy.device
    precision = opts.precision or space.proxy.precision
    where = "--train-device" if opts.train_device else "proxy.device"
    try:
        resolved = resolve_train_device(device)
    except ValueError as e:
        raise NaslError(f"{where} {device}: {e}") from None
    try:
        resolve_precision(precision, resolved)
    except ValueError as e:
        where = "--precision" if opts.precision else "proxy.precision"
        raise NaslError(f"{where} {precision} on {resolved}: {e}") from None
    return device, precision


def remote_target(space: Any, opts: SearchOptions) -> Any:
    """The :class:`nasl.latency.remote.RemoteTarget` of the options (else the space's
    ``target.remote``), or None; ``NaslError`` naming the flag or key when it is unusable."""
    target = space.target
    address = opts.target_remote or getattr(target, "remote", None)
    if not address:
        if opts.token_file:
            raise NaslError("--token-file is only used with --target-remote HOST:PORT (or the "
                            "space's target.remote)")
        return None
    flag = "--target-remote" if opts.target_remote else "target.remote"
    from nasl.latency.remote import RemoteTarget, parse_address
    from nasl.latency.wire import read_token

    try:
        parse_address(address)
    except ValueError as e:
        raise NaslError(f"{flag}: {e}") from None
    token_file = opts.token_file or getattr(target, "token_file", None)
    if not token_file:
        raise NaslError(f"{flag} {address}: a token file is required (--token-file F or the "
                        "space's target.token_file; see docs/remote-latency.md)")
    if opts.runtime not in (None, "onnxruntime"):
        raise NaslError(f"--runtime {opts.runtime}: a remote target measures ONNX models with "
                        "onnxruntime only (drop --runtime or use --runtime onnxruntime)")

    required = opts.target_required if opts.target_required is not None \
        else bool(getattr(target, "required", False))
    try:
        remote = RemoteTarget(address, str(token_file), required=required)
        read_token(remote.token_file)
    except ValueError as e:
        raise NaslError(f"{flag}: {e}") from None
    return remote


def to_json(obj: Any) -> str:
    """JSON of env.json-like values (dataclasses, paths; non-finite floats → null)."""
    import math

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)  # type: ignore[arg-type]
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, float) and not math.isfinite(o):
            return None
        return str(o)

    return json.dumps(obj, indent=2, default=default)
