"""``nasl export``: choose a trial of a run (or a preset), train it for real, export it.

In: a run folder written by ``nasl search`` and ``--trial N`` or ``--pick HOW`` (or a paper
preset with overrides). Out: an export folder (see :func:`nasl.export.export_arch`).

Which network is exported. The search reports MACs, params and latency for the *target*
network (e.g. 224 × ρ px, 1000 classes) but trains the *proxy* network (the data set's
channels and classes at ``proxy_resolution`` × ρ). By default the proxy network is trained
from scratch on the **full training split** for ``epochs`` (default: ``3 ×`` the run's proxy
epochs, at least 30, with the space's proxy recipe) and evaluated on the **test split**,
which the search never saw; that trained network is exported. The card shows its own
MACs/params and the target's, and checks that the target rebuilt from the trial's design
has exactly the MACs and params recorded for the trial. ``train=False`` (``--no-train``)
exports the target network itself with a fresh initialisation (its MACs/params are then
the trial's exactly).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nasl.common.errors import NaslError
from nasl.export.artifacts import FORMATS, ExportResult, export_arch, parse_formats, prepare_out, versions
from nasl.export.latency_check import latency_facts, verify_latency  # noqa: F401
from nasl.network.arch import ArchConfig

EPOCH_FACTOR = 3
MIN_EPOCHS = 30
DEFAULT_PICK = "knee"
PRESET_DATA = "digits"
PRESET_RESOLUTION = 32
KNEE_RULE = ("Knee: among the confident front members (a member tied within noise with a cheaper "
             "one gives way to it), each objective min-max normalised; the knee is the point "
             "farthest from the plane through the per-objective extremes, towards the ideal "
             "point, i.e. the one that gives up least in any objective (`nasl.stats.pareto.knee`).")


def default_epochs(proxy_epochs: int | None) -> int:
    """Export training length: ``3 ×`` the proxy epochs, at least 30."""
    return max(MIN_EPOCHS, EPOCH_FACTOR * int(proxy_epochs or 0))


# ------------------------------------------------------------------------------ choosing
def _valid_picks(objectives: Sequence[Sequence[str]]) -> list[str]:
    from nasl.stats.pareto import ALIASES

    names = [m for m, _ in objectives]
    return [DEFAULT_PICK, *names, *(a for a, n in ALIASES.items() if n in names and a not in names)]


def choose_trial(study: Any, env: Mapping[str, Any], run: str, *, trial: int | None,
                 pick: str | None) -> Any:
    """The ``FrozenTrial`` asked for: ``trial`` by number (must be COMPLETE) or ``pick``
    (``knee`` when neither is given). ``knee``, ``accurate`` and ``fast`` are the run's
    recommendation when its confirmation made one (docs/claims.md); ``knee`` without one and
    an objective's name pick from the search's front. NaslError with one line otherwise."""
    import optuna

    from nasl.run import results, verdict
    from nasl.stats import pareto

    trials = study.get_trials(deepcopy=False)
    if trial is not None:
        by_number = {t.number: t for t in trials}
        if trial not in by_number:
            have = f"trials 0..{max(by_number)}" if by_number else "no trials"
            raise NaslError(f"run {run!r} has no trial {trial} ({have})")
        t = by_number[trial]
        if t.state != optuna.trial.TrialState.COMPLETE:
            reason = t.user_attrs.get("reason") or "no reason recorded"
            raise NaslError(f"run {run!r}: trial {trial} is {t.state.name}, not COMPLETE ({reason}); "
                            "only completed trials can be exported")
        if not t.user_attrs.get("choices"):
            raise NaslError(f"run {run!r}: trial {trial} has no recorded design choices")
        return t
    how = pick or DEFAULT_PICK
    objectives = [tuple(o) for o in env["objectives"]]
    answer = study.user_attrs.get("answer") or {}
    recommended = {p["tradeoff"]: int(p["design"]) for p in answer.get("recommendation", [])}
    valid = _valid_picks(objectives) + [k for k in ("accurate", "fast") if k in recommended]
    if how not in valid:
        raise NaslError(f"--pick {how!r}: unknown choice; expected one of {', '.join(valid)}")
    if how in recommended:  # the run's answer: decided at the confirmation's higher fidelity
        return next(t for t in trials if t.number == recommended[how])
    rows = results.load_rows(study)
    front = [rows[i] for i in results.mark_front(rows, objectives)]
    if verdict.front_verdict(rows, objectives) is not None:  # only the confident members:
        front = [r for r in front if r.get("confident")]  # a tie goes to its cheapest member
    if not front:
        raise NaslError(f"run {run!r} has no completed feasible trial yet, so no Pareto front to "
                        "pick from; use --trial N")
    points = [[float(r[m]) for m, _ in objectives] for r in front]
    idx = pareto.pick(points, [d for _, d in objectives], how, [m for m, _ in objectives])
    return next(t for t in trials if t.number == front[idx]["number"])


# ------------------------------------------------------------------------------ training
def _progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Info(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(str(task.fields.get("info", "")))

    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                    Info(), TimeElapsedColumn())


def train_network(arch: ArchConfig, data: Any, cfg: Any, *, seed: int,
                  progress: bool = True) -> tuple[Any, Any]:
    """Build ``arch`` with ``seed`` and train it on ``data`` → (model, TrainResult).

    ``progress`` shows a bar per epoch with the epoch, mean train loss and test accuracy.
    """
    from nasl.network.builder import build_model
    from nasl.training.train import train_model

    model = build_model(arch, seed=seed)
    if not progress:
        return model, train_model(model, data, cfg, seed=seed)
    bar = _progress()
    with bar:
        task = bar.add_task("epochs", total=cfg.epochs, info="")

        def on_epoch(ep: Any) -> None:
            bar.update(task, advance=1, info=f"epoch {ep.epoch} loss {ep.train_loss:.3f} "
                       f"test acc {100 * ep.val_accuracy:.1f}%")

        result = train_model(model, data, cfg, seed=seed, on_epoch=on_epoch, progress=bar)
    return model, result


def _train_config(recipe: Mapping[str, Any], epochs: int) -> Any:
    from nasl.training.train import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{**{k: v for k, v in recipe.items() if k in known}, "epochs": epochs})


def _recipe(cfg: Any) -> dict[str, Any]:
    keys = ("epochs", "batch_size", "optimizer", "learning_rate", "momentum", "weight_decay",
            "label_smoothing", "warmup_epochs")
    return {k: getattr(cfg, k) for k in keys}


ProxyBuilder = Callable[[int, int], ArchConfig]  # (num_classes, in_channels) -> proxy network


def _proxy_network(build: ProxyBuilder, *, data_spec: str, data_seed: int) -> tuple[ArchConfig, Any]:
    """The proxy network (proxy resolution × ρ, the data's classes and channels), built the way
    the search builds it, and its data (split "final": the full training split, and the test
    split)."""
    from nasl.data import load_dataset

    def make(num_classes: int, in_channels: int) -> ArchConfig:
        try:
            return build(num_classes, in_channels)
        except ValueError as e:
            raise NaslError(f"the design cannot be built at the proxy resolution: {e}") from None

    res = make(1, 3).input_size
    data = load_dataset(data_spec, resolution=res, seed=data_seed, split="final")
    return make(data.num_classes, data.in_channels), data


def _train_and_export(target: ArchConfig, out: Path, card: dict[str, Any], *, train: bool,
                      proxy: ProxyBuilder, data_spec: str, data_seed: int, epochs: int,
                      recipe: Mapping[str, Any], seed: int, formats: tuple[str, ...],
                      progress: bool) -> ExportResult:
    """Shared tail of export_run / export_preset: train the proxy network (or take the target
    network untrained), then :func:`export_arch` with the card."""
    acc = card.setdefault("accuracy", {})
    if not train:
        acc["trained"] = False
        return export_arch(target, out, formats=formats, card=card, seed=seed)
    arch, data = _proxy_network(proxy, data_spec=data_spec, data_seed=data_seed)
    cfg = _train_config(recipe, epochs)
    from nasl.training.train import TrainingDiverged

    try:
        model, result = train_network(arch, data, cfg, seed=seed, progress=progress)
    except TrainingDiverged as e:
        raise NaslError(f"export training of {arch.family} {arch.id}: {e}; nothing was written "
                        "besides the folder") from None
    acc.update(trained=True, test=result.final_accuracy, best_test=result.best_accuracy,
               epochs=result.epochs, data=data_spec, resolution=arch.input_size,
               seconds=round(result.seconds, 1))
    card["training"] = {**_recipe(cfg), "seed": seed, "data": data_spec}
    return export_arch(arch, out, model=model, formats=formats, card=card, mean=data.mean,
                       std=data.std, seed=seed)


def _target_facts(target: ArchConfig) -> dict[str, Any]:
    from nasl.network.cost import size_mb

    return {"input_shape": [1, target.in_channels, target.input_size, target.input_size],
            "num_classes": target.num_classes, "macs": target.macs(), "params": target.params(),
            "size_mb": size_mb(target.params())}


def built_params(arch: ArchConfig) -> int:
    """Parameters of the module actually built from ``arch`` (on the meta device: no memory)."""
    import torch

    from nasl.network.builder import build_model
    from nasl.network.cost import count_params

    with torch.device("meta"):
        return count_params(build_model(arch, seed=None))


def export_run(run_dir: Path | str, *, trial: int | None = None, pick: str | None = None,
               epochs: int | None = None, train: bool = True, data: str | None = None,
               formats: str | Sequence[str] = FORMATS, out: Path | str | None = None,
               progress: bool = True, command: str | None = None,
               verify: bool = True) -> ExportResult:
    """Export one trial of a run → ExportResult (see the module docstring).

    ``trial``: any COMPLETE trial by number; ``pick``: knee (default), accuracy, macs,
    latency, ... (the run's objectives) from the Pareto front; not both. ``epochs``: export
    training length (default :func:`default_epochs` of the run's proxy epochs); ``train=False``
    exports the untrained target network. ``data``: data set (default: the run's).
    ``out``: default ``<run>/export/trial-N/``. ``command``: recorded in the card (default:
    the equivalent ``nasl export`` command). ``verify``: when the search measured latency,
    time the target network again in the same runtime, device, threads, batch and dtype
    (:func:`verify_latency`); the card shows both. Bad input raises NaslError with one line.
    """
    from nasl.run.results import FINAL_LATENCY, RunDir, open_run_study

    if trial is not None and pick is not None:
        raise NaslError("--trial and --pick exclude each other: give one (or neither for the knee)")
    fmts = parse_formats(formats)
    _check_epochs(epochs)
    run = RunDir(Path(run_dir))
    study, env = open_run_study(run)
    t = choose_trial(study, env, str(run.root), trial=trial, pick=pick)
    space = _load_space(run)
    from nasl.space.core import require_network

    require_network(space, f"nasl export {run.root}")
    ua = t.user_attrs
    target = space.to_arch(ua["choices"])
    facts = _target_facts(target)
    recorded = (ua.get("macs"), ua.get("params"))
    matches = recorded == (facts["macs"], facts["params"]) == (target.macs(), built_params(target))
    if not matches:
        raise NaslError(f"run {str(run.root)!r}: trial {t.number} recorded {recorded[0]} MACs / "
                        f"{recorded[1]} params but its design now builds {facts['macs']} / "
                        f"{facts['params']} (was the space or nasl changed since the search?)")
    out_dir = prepare_out(Path(out) if out is not None else run.root / "export" / f"trial-{t.number}")
    seed = int(ua.get("seed", env.get("seed", 0)))
    run_epochs = env.get("epochs") or getattr(space.proxy, "epochs", None)
    n_epochs = epochs or default_epochs(run_epochs)
    data_spec = data or env.get("data") or space.proxy.dataset
    how = None if trial is not None else (pick or DEFAULT_PICK)
    card: dict[str, Any] = {
        "title": f"{space.name}: trial {t.number} of run {run.name}",
        "command": command or _command(["nasl", "export", str(run_dir),
                                        *(["--trial", str(trial)] if trial is not None else []),
                                        *(["--pick", how] if how else []),
                                        *(["--no-train"] if not train else ["--epochs", str(n_epochs)]),
                                        *(["--data", data] if data else []),
                                        "--format", ",".join(fmts), "--out", str(out_dir)]),
        "source": {"kind": "run", "run": str(run.root), "trial": t.number, "pick": how,
                   "pick_rule": KNEE_RULE if how == "knee" else None,
                   "baseline": ua.get("baseline") or None, "feasible": ua.get("feasible"),
                   "reason": ua.get("reason")},
        "choices": dict(ua["choices"]),
        "target": {**facts, "macs_recorded": recorded[0], "params_recorded": recorded[1],
                   "matches": matches},
        "latency": latency_facts({**ua, **study.user_attrs.get(FINAL_LATENCY, {}).get(
            str(t.number), {})}),
        "accuracy": {"proxy": ua.get("accuracy"), "proxy_epochs": ua.get("epochs")},
        "space": {"name": env.get("space", space.name), "family": env.get("family", space.family),
                  "path": str(run.space_yaml), "objectives": env.get("objectives"),
                  "budgets": env.get("budgets"), "sampler": env.get("sampler"),
                  "trials": env.get("trials"), "yaml": run.space_yaml.read_text()},
        "versions": versions(),
    }
    if verify and card["latency"] is not None:
        card["latency"]["export"] = verify_latency(
            target, card["latency"], runtime=getattr(space.target, "runtime", "torch"),
            remote=remote_of_run(env))
    recipe = space.proxy.train_kwargs() if hasattr(space.proxy, "train_kwargs") else {}
    choices = dict(ua["choices"])
    return _train_and_export(target, out_dir, card, train=train,
                             proxy=lambda nc, ic: space.proxy_arch(choices, nc, ic),
                             data_spec=data_spec, data_seed=int(env.get("seed", 0)), epochs=n_epochs,
                             recipe=recipe, seed=seed, formats=fmts, progress=progress)


def remote_of_run(env: dict[str, Any]) -> Any:
    """The run's remote latency target (env.json ``target_remote``), or None."""
    if not env.get("target_remote"):
        return None
    from nasl.latency.remote import RemoteTarget

    return RemoteTarget(env["target_remote"], str(env.get("token_file") or ""))


def _load_space(run: Any) -> Any:
    from nasl.space import load_space

    if not run.space_yaml.is_file():
        raise NaslError(f"{str(run.root)!r} is not a complete nasl run: space.yaml missing")
    return load_space(run.space_yaml)


def export_preset(name: str, overrides: Mapping[str, Any] | None = None, *,
                  epochs: int | None = None, train: bool = True, data: str | None = None,
                  resolution: int | None = None, formats: str | Sequence[str] = FORMATS,
                  out: Path | str | None = None, seed: int = 0, latency: bool = True,
                  progress: bool = True, command: str | None = None,
                  runtime: str = "torch") -> ExportResult:
    """Export a paper preset (``overrides``: design choices, as ``--set k=v``) → ExportResult.

    The target is the preset at its paper size (224 or 299 × ρ, 1000 classes; ``input_size``
    and ``num_classes`` may be overridden too). Training as for a run, on ``data`` (default
    digits) at ``resolution`` × ρ (default 32) for ``epochs`` (default 30) with the default
    recipe. ``latency``: time the target network on this machine's default device (1 thread)
    in ``runtime`` (torch, onnxruntime or torch.compile).
    ``out``: default ``runs/export/<name>`` (``<name>-<arch id>`` with overrides).
    """
    from nasl.families import preset, preset_choices
    from nasl.latency.timing import measure_latency

    fmts = parse_formats(formats)
    _check_epochs(epochs)
    over = dict(overrides or {})
    io = {k: over.pop(k) for k in ("input_size", "num_classes") if k in over}
    try:
        family, choices = preset_choices(name)
        target = preset(name, **io, **over)
    except (ValueError, TypeError) as e:
        raise NaslError(f"nasl export --preset {name}: {e}") from None
    default_out = Path("runs") / "export" / (name if not (over or io) else f"{name}-{target.id}")
    out_dir = prepare_out(Path(out) if out is not None else default_out)
    lat = None
    if latency:
        from nasl.network.builder import build_model

        m = measure_latency(build_model(target, seed=seed), (target.in_channels, target.input_size,
                                                             target.input_size), warmup=5, repeats=20,
                            runtime=runtime)
        lat = {**{k: getattr(m, k) for k in ("median_ms", "p10_ms", "p90_ms", "device",
                                             "device_name", "threads", "batch_size", "dtype",
                                             "repeats", "runtime")}, "source": "measured by nasl export"}
    n_epochs = epochs or MIN_EPOCHS
    data_spec = data or PRESET_DATA
    sets = [a for k, v in {**io, **over}.items() for a in ("--set", f"{k}={_cli_text(v)}")]
    card: dict[str, Any] = {
        "title": f"{name}" + (" (modified)" if over or io else "") + f" [{family.name}]",
        "command": command or _command(["nasl", "export", "--preset", name, *sets,
                                        *(["--no-train"] if not train else ["--epochs", str(n_epochs)]),
                                        *(["--data", data] if data else []),
                                        "--format", ",".join(fmts), "--out", str(out_dir)]),
        "source": {"kind": "preset", "preset": name, "overrides": {**io, **over}},
        "choices": {**choices, **over},
        "target": _target_facts(target),
        "target_label": "target (paper setting)",
        "latency": lat,
        "accuracy": {},
        "versions": versions(),
    }
    def proxy(num_classes: int, in_channels: int) -> ArchConfig:
        arch = preset(name, **{**io, **over, "input_size": resolution or PRESET_RESOLUTION,
                               "num_classes": num_classes})
        return arch.with_io(in_channels=in_channels) if in_channels != arch.in_channels else arch

    return _train_and_export(target, out_dir, card, train=train, proxy=proxy, data_spec=data_spec,
                             data_seed=seed,
                             epochs=n_epochs, recipe={}, seed=seed, formats=fmts, progress=progress)


def _cli_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def _check_epochs(epochs: int | None) -> None:
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise NaslError(f"--epochs {epochs!r}: expected an integer >= 1")


def _command(parts: Sequence[str | None]) -> str:
    return " ".join(shlex.quote(p) for p in parts if p is not None)
