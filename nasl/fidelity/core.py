"""Re-train a finished run's designs at a higher fidelity, resumably → ``fidelity.json``/``.csv``.

In: a run folder (``env.json``, ``space.yaml``, ``study.db`` from ``nasl search``) and
:class:`FidelityOptions`. Out: the result dict of :func:`run_fidelity` (also written to
``runs/<name>/fidelity.json`` after every re-trained design, atomically, and to
``fidelity.csv``). The designs: the Pareto front, every baseline and every design the proxy
search says beats a baseline, plus a sample of ``sample`` other completed feasible trials
stratified by proxy-accuracy quantiles. Higher fidelity: ``epochs`` epochs (no step cap,
no early stop), with ``full`` the whole training split (validation carved from it, seeded
as in the search); the test split is never read. A rerun skips the designs already done
with the same settings, so a killed check keeps what it finished.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from nasl.common.errors import NaslError
from nasl.fidelity.stats import DEFAULT_TOP_K, summarise
from nasl.run.results import RunDir, load_run, write_text_atomic
from nasl.zerocost.stats import N_BOOT

DEFAULT_SAMPLE = 8
EPOCH_FACTOR = 3  # default high-fidelity epochs: 3 x the run's proxy epochs
FILE_JSON, FILE_CSV = "fidelity.json", "fidelity.csv"
#: Index of the first seed a fidelity check trains with (search: 0, confirmation: 1, 2, ...).
FRESH_SEEDS = 1000
CSV_COLUMNS = ("number", "role", "baseline", "macs", "latency_ms", "proxy_accuracy", "proxy_seeds",
               "high_accuracy", "high_seeds", "gain", "wall_s", "cpu_s", "finished_at")


@dataclass(frozen=True)
class FidelityOptions:
    """What to re-train: ``epochs`` (None: EPOCH_FACTOR x the run's), ``full`` training split,
    ``sample`` other designs, ``seeds`` per design, ``top_k`` for the recall, ``restart``
    (discard a fidelity.json made with other settings), ``recipe`` (a name of
    :data:`nasl.training.recipes.RECIPES`; None: the run's own proxy recipe)."""

    epochs: int | None = None
    full: bool = False
    sample: int = DEFAULT_SAMPLE
    seeds: int = 2
    top_k: int = DEFAULT_TOP_K
    restart: bool = False
    n_boot: int = N_BOOT
    recipe: str | None = None


def validate(opts: FidelityOptions) -> None:
    """``NaslError`` naming the option when a value is out of range."""
    for flag, v in (("--epochs", opts.epochs), ("--sample", opts.sample), ("--seeds", opts.seeds),
                    ("--top-k", opts.top_k)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise NaslError(f"{flag} {v}: expected an integer >= 1")
    from nasl.training.recipes import RECIPES

    if opts.recipe is not None and opts.recipe not in RECIPES:
        raise NaslError(f"--recipe {opts.recipe!r}: expected one of {', '.join(RECIPES)}")


def _done(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """COMPLETE feasible rows with an accuracy."""
    return [r for r in rows if r.get("state") == "COMPLETE" and r.get("feasible")
            and r.get("accuracy") is not None and math.isfinite(float(r["accuracy"]))]


def stratified_sample(rows: list[dict[str, Any]], k: int, seed: int) -> list[int]:
    """Trial numbers of ``k`` rows, one from each of ``k`` proxy-accuracy quantile bins
    (seeded); all of them when there are no more than ``k``."""
    if len(rows) <= k:
        return sorted(int(r["number"]) for r in rows)
    ordered = sorted(rows, key=lambda r: (float(r["accuracy"]), int(r["number"])))
    rng = np.random.default_rng(seed)
    return sorted(int(b[rng.integers(len(b))]["number"]) for b in np.array_split(np.array(ordered), k))


def select(rows: list[dict[str, Any]], baselines: list[dict[str, Any]], sample: int,
           seed: int) -> dict[int, str]:
    """``{trial number: role}`` of the designs to re-train: ``front``, ``baseline``,
    ``claim`` (beats a baseline, off the front) and ``sample`` (stratified)."""
    done = _done(rows)
    numbers = {int(r["number"]) for r in done}
    roles: dict[int, str] = {int(r["number"]): "front" for r in done if r.get("pareto")}
    for r in done:
        if r.get("baseline"):
            roles[int(r["number"])] = "baseline"
    for b in baselines:
        for t in (int(x) for x in b.get("beaten_by", [])):
            if t in numbers:
                roles.setdefault(t, "claim")
    rest = [r for r in done if int(r["number"]) not in roles]
    for n in stratified_sample(rest, sample, seed):
        roles[n] = "sample"
    return dict(sorted(roles.items()))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _prepare(run: RunDir, opts: FidelityOptions) -> tuple[Any, Any, dict[str, Any], list[dict[str, Any]],
                                                          dict[str, Any]]:
    """Run → (space, high-fidelity Settings, env, rows, recorded settings)."""
    from nasl.search.options import SearchOptions, recipe_of, resolve_settings
    from nasl.space import load_space

    validate(opts)
    env = run.read_env()
    if not run.space_yaml.is_file():
        raise NaslError(f"{str(run.root)!r} is not a finished nasl run: space.yaml missing")
    rows, env = load_run(run)
    if not _done(rows):
        raise NaslError(f"{run.root}: no completed feasible trials with an accuracy; "
                        "`nasl fidelity` needs a run where `nasl search` trained designs")
    space = load_space(run.space_yaml)
    from nasl.space.core import require_network

    require_network(space, "nasl fidelity")
    proxy_epochs = int(env.get("epochs") or space.proxy.epochs)
    epochs = opts.epochs or EPOCH_FACTOR * proxy_epochs
    # the recipe: --recipe, else the one the run searched with (its --recipe, else the space's)
    recipe = opts.recipe or env.get("recipe")
    search_opts = SearchOptions(data=env.get("data"), epochs=epochs, seed=env.get("seed"),
                                early_stop=False, recipe=recipe)
    base = resolve_settings(space, search_opts)
    settings = dataclasses.replace(base, train=dataclasses.replace(base.train, max_steps=None))
    if opts.full:
        settings = dataclasses.replace(settings, subset=None, val_subset=None)
    recorded = {"epochs": epochs, "recipe": recipe_of(space, search_opts).describe(epochs),
                "full": opts.full, "seeds": opts.seeds, "data": settings.data,
                "subset": settings.subset, "val_subset": settings.val_subset,
                "val_fraction": settings.val_fraction, "data_seed": settings.seed,
                "split": "search (validation carved from the training split; test split unused)"}
    proxy = {"epochs": proxy_epochs, "subset": space.proxy.subset, "val_subset": space.proxy.val_subset,
             "max_steps": base.train.max_steps}
    return space, settings, {**env, "_proxy": proxy}, rows, recorded


def _previous(path: Path, recorded: dict[str, Any], restart: bool) -> dict[int, dict[str, Any]]:
    """Designs of an earlier fidelity.json with the same settings (NaslError if they differ)."""
    if not path.is_file() or restart:
        return {}
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a torn file cannot happen (atomic writes); treat as absent
    if old.get("settings") != recorded:
        diff = sorted(k for k in set(recorded) | set(old.get("settings") or {})
                      if (old.get("settings") or {}).get(k) != recorded.get(k))
        raise NaslError(f"{path}: made with other settings ({', '.join(diff)} differ); rerun with "
                        "the same --epochs/--full/--seeds to resume, or add --restart to start over")
    return {int(d["number"]): d for d in old.get("designs", [])}


def _csv(designs: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for d in designs:
        w.writerow({k: ",".join(f"{x:.6g}" for x in d[k]) if isinstance(d.get(k), list)
                    else ("" if d.get(k) is None else d.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def _result(run: RunDir, recorded: dict[str, Any], env: dict[str, Any], roles: dict[int, str],
            designs: dict[int, dict[str, Any]], baselines: list[dict[str, Any]],
            opts: FidelityOptions, started: str) -> dict[str, Any]:
    done = [designs[n] for n in sorted(designs)]
    planned = sorted(roles)
    return {"run": run.name, "settings": recorded, "proxy": env["_proxy"],
            "status": "complete" if all(n in designs for n in planned) else "partial",
            "planned": planned, "sample": opts.sample, "started_at": started, "updated_at": _now(),
            "designs": done,
            **summarise(done, baselines, top_k=opts.top_k, n_boot=opts.n_boot,
                        seed=int(env.get("seed") or 0))}


def write_outputs(run: RunDir, result: dict[str, Any]) -> None:
    """fidelity.json and fidelity.csv of ``result``, each atomically."""
    write_text_atomic(run / FILE_JSON, json.dumps(result, indent=2, default=str))
    write_text_atomic(run / FILE_CSV, _csv(result["designs"]))


def run_fidelity(run_dir: str | Path, opts: FidelityOptions | None = None, *,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Re-train the selected designs of ``run_dir`` at high fidelity → the result dict.

    Keys: ``run``, ``settings`` (high fidelity), ``proxy`` (the search's fidelity),
    ``status``, ``planned``, ``designs`` (number, role, baseline, macs, latency_ms,
    proxy_accuracy, proxy_seeds, high_accuracy, high_seeds, gain, seeds, wall_s, cpu_s,
    finished_at), ``correlation``, ``top_k``, ``claims``, ``claims_summary``,
    ``claim_rule``, ``mean_gain``. ``progress`` receives one line per design.
    """
    from nasl.run import verdict
    from nasl.search.objective import Evaluator, seed_list

    opts = opts or FidelityOptions()
    run = RunDir(Path(run_dir))
    space, settings, env, rows, recorded = _prepare(run, opts)
    objectives = [(str(m), str(d)) for m, d in env["objectives"]]
    fv = verdict.front_verdict(rows, objectives)
    baselines = list(fv["baselines"]) if fv else []
    seed = int(env.get("seed") or 0)
    roles = select(rows, baselines, opts.sample, seed)
    by_number = {int(r["number"]): r for r in _done(rows)}
    prev = _previous(run / FILE_JSON, recorded, opts.restart)
    for n, d in prev.items():  # designs an earlier check (another --sample) finished stay in
        if n in by_number:
            roles.setdefault(n, str(d.get("role") or "sample"))
    roles = dict(sorted(roles.items()))
    designs = {n: {**d, "role": roles[n]} for n, d in prev.items() if n in roles}
    started = _now()
    write_outputs(run, _result(run, recorded, env, roles, designs, baselines, opts, started))
    evaluator = Evaluator(space, settings)
    names = env.get("choice_names") or list(space.order)
    todo = [n for n in roles if n not in designs]
    for i, n in enumerate(todo, 1):
        r = by_number[n]
        params = {c: r[c] for c in names if c in r}
        # fresh seeds (indices the search and the confirmation stage never use): the check
        # is independent of the noise the search's own claims were made with
        seeds = seed_list(int(r.get("seed") or 0), opts.seeds, FRESH_SEEDS)
        t0, c0 = time.perf_counter(), time.process_time()
        accs = evaluator.train_seeds(params, seeds)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        high = float(np.mean(accs))
        proxy = float(r["accuracy"])
        designs[n] = {"number": n, "role": roles[n], "baseline": r.get("baseline") or "",
                      "macs": r.get("macs"), "latency_ms": r.get("latency_ms"),
                      "proxy_accuracy": proxy, "proxy_seeds": list(r.get("accuracy_seeds") or [proxy]),
                      "high_accuracy": high, "high_seeds": accs, "gain": round(high - proxy, 6),
                      "seeds": seeds, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "finished_at": _now()}
        write_outputs(run, _result(run, recorded, env, roles, designs, baselines, opts, started))
        if progress:
            progress(f"fidelity: trial {n} ({roles[n]}, {i}/{len(todo)}): proxy {proxy:.4f} → "
                     f"{high:.4f} at {recorded['epochs']} epochs in {wall:.1f} s (cpu/wall "
                     f"{cpu / wall if wall > 0 else 0:.2f})")
    result = _result(run, recorded, env, roles, designs, baselines, opts, started)
    write_outputs(run, result)
    return result


def stderr_progress(line: str) -> None:
    """Progress lines on stderr (flushed, so a killed run shows how far it got)."""
    print(line, file=sys.stderr, flush=True)
