"""GPU check: latency of the presets, training throughput, the main job and the GPU-vs-CPU
ranking, on one GPU.

In at most about 8 minutes on one CUDA GPU (``--time-budget``, default 450 s; parts that
would not fit are skipped and say so):

1. the five paper presets at 224 (Xception 299), batch 1, fp32/fp16/bf16: median, p10-p90
   spread and coefficient of variation over the timed runs, each preset timed ``--rounds``
   times in a row (CUDA events, cudnn.benchmark, warm-up; :func:`nasl.latency.timing.measure_latency`);
2. a short search, ``nasl search shufflenet --device cuda --trials 4 --epochs 2`` in a
   subprocess (its exit status, time and latency column);
3. 20 designs of the ShuffleNet space timed on the GPU and on the CPU (1 thread): Spearman
   of the two rankings;
4. proxy training (the main job's network and data): images/s of one trial and in aggregate
   with K = 1, 2, 4, 8 trials training at once on the GPU (K processes started together), fp32
   and bf16, and each trial's peak GPU memory;
5. the main job (``nasl search shufflenet --budget 40MFLOPs``) trained on the GPU with
   ``--trials-per-device auto`` (the K its probe chose is reported): its wall time and its
   front, against the same search trained on the CPU (one trial at a time) when time is left.

Writes a Markdown report to ``--out`` (default ``$OUT/gpu_check.md`` when ``$OUT`` is set,
else ``gpu_check.md``) and the same results as JSON beside it. Without CUDA it prints one line
saying so and exits 0, measuring nothing. ``--dry-run`` runs every part and code path on the
CPU at tiny sizes (K = 1, 2; fp32 and bf16; both main-job trainings), for the tests.
``--device cpu --tiny`` runs the latency parts only, at small sizes.

    python bench/gpu_check.py                      # on a GPU machine
    python bench/gpu_check.py --dry-run --out /tmp/gpu_check.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TRAIN_KS = (1, 2, 4, 8)
MAIN_JOB = ("shufflenet", "--budget", "40MFLOPs")
PRESETS = ("squeezenet1_0", "squeezenet1_1", "mobilenet_v1", "shufflenet_v1", "xception")
NO_CUDA = "gpu_check: no CUDA device visible (torch.cuda.is_available() is False); nothing measured"


def preset_rows(device: str, dtypes: Sequence[str], *, rounds: int, repeats: int,
                input_size: int | None, deadline: float) -> list[dict[str, Any]]:
    """One row per (preset, dtype): median of the rounds' medians, p10/p90, CV, or a skip."""
    from nasl.families import preset
    from nasl.latency.timing import measure_latency
    from nasl.network.builder import build_model

    rows: list[dict[str, Any]] = []
    for name in PRESETS:
        arch = preset(name, **({"input_size": input_size} if input_size else {}))
        model = build_model(arch, seed=0)
        for dtype in dtypes:
            row: dict[str, Any] = {"preset": name, "dtype": dtype, "input": arch.input_size}
            if time.monotonic() > deadline:
                rows.append({**row, "skipped": "time budget"})
                continue
            try:
                lats = [measure_latency(model, (3, arch.input_size, arch.input_size), device=device,
                                        dtype=dtype, warmup=10, repeats=repeats)
                        for _ in range(rounds)]
            except (ValueError, RuntimeError) as e:
                rows.append({**row, "skipped": str(e).splitlines()[0][:80]})
                continue
            medians = [lat.median_ms for lat in lats]
            row.update(median_ms=statistics.median(medians), p10_ms=min(lat.p10_ms for lat in lats),
                       p90_ms=max(lat.p90_ms for lat in lats),
                       cv_pct=100 * statistics.fmean(lat.std_ms / lat.mean_ms for lat in lats),
                       rounds_spread_pct=100 * (max(medians) - min(medians)) / min(medians),
                       device_name=lats[0].device_name)
            rows.append(row)
    return rows


def rank_rows(device: str, n: int, *, input_size: int | None, repeats: int,
              deadline: float) -> dict[str, Any]:
    """``n`` ShuffleNet-space designs timed on ``device`` and on the CPU (1 thread):
    per-design milliseconds and the Spearman correlation of the two rankings."""
    from scipy.stats import spearmanr

    from nasl.latency.timing import measure_latency
    from nasl.network.builder import build_model
    from nasl.space import load_space, sample_params

    space = load_space("shufflenet")
    out: list[dict[str, Any]] = []
    for params in sample_params(space, n, seed=0):
        if time.monotonic() > deadline:
            break
        arch = space.to_arch(params)
        if input_size:
            arch = arch.with_io(input_size=input_size)
        model = build_model(arch, seed=0)
        shape = (3, arch.input_size, arch.input_size)
        dev = measure_latency(model, shape, device=device, warmup=5, repeats=repeats).median_ms
        cpu = measure_latency(model, shape, device="cpu", threads=1, warmup=2, repeats=repeats).median_ms
        out.append({"arch_id": arch.id, "macs": arch.macs(), "device_ms": dev, "cpu_ms": cpu})
    rho = float(spearmanr([r["device_ms"] for r in out], [r["cpu_ms"] for r in out]).statistic) \
        if len(out) > 2 else float("nan")
    return {"designs": out, "spearman": rho, "requested": n}


def search_cmd(device: str, runs_dir: str, *, trials: int = 4, epochs: int = 2) -> list[str]:
    """The short search's command line (``nasl`` through this Python)."""
    return [sys.executable, "-m", "nasl.cli", "search", "shufflenet", "--device", device,
            "--trials", str(trials), "--epochs", str(epochs), "--name", "gpu-check",
            "--runs-dir", runs_dir, "--quiet", "--no-baselines"]


def train_worker(device: str, precision: str, epochs: int, subset: int) -> dict[str, Any]:
    """One proxy training (ShuffleNet 0.5x at 32 px on fmnist-mini, as in the main job) on
    ``device``, started when a line arrives on stdin (so K workers train at once) → its
    images/s, seconds, accuracy and peak device memory (MiB; None on the CPU)."""
    import torch

    from nasl.data import load_dataset
    from nasl.families import preset
    from nasl.hardware.accel import on_device
    from nasl.network.builder import build_model
    from nasl.training.train import TrainConfig, train_model

    data = on_device(load_dataset("fmnist-mini", resolution=32, seed=0, subset=subset), device)
    arch = preset("shufflenet_v1", width_mult=0.5).with_io(input_size=32, num_classes=10,
                                                          in_channels=data.in_channels)
    model = build_model(arch, seed=0).to(device)
    print("ready", flush=True)
    sys.stdin.readline()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    r = train_model(model, data, TrainConfig(epochs=epochs, precision=precision), seed=0,
                    threads=None if cuda else 1)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return {"images_per_second": r.images_per_second, "seconds": r.train_seconds,
            "accuracy": r.final_accuracy, "precision": r.precision, "peak_mb": peak}


def train_rows(device: str, precisions: Sequence[str], ks: Sequence[int], *, epochs: int,
               subset: int, deadline: float) -> list[dict[str, Any]]:
    """For each precision and K: K worker processes train at once on ``device`` → images/s
    per trial (mean) and in aggregate (sum), peak memory per trial, failures."""
    rows: list[dict[str, Any]] = []
    for precision in precisions:
        for k in ks:
            row: dict[str, Any] = {"precision": precision, "k": k}
            if time.monotonic() > deadline:
                rows.append({**row, "skipped": "time budget"})
                continue
            cmd = [sys.executable, str(Path(__file__).resolve()), "--train-worker", device,
                   precision, str(epochs), str(subset)]
            procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(k)]
            ready = [p.stdout.readline().strip() == "ready" for p in procs]  # type: ignore[union-attr]
            outs = [p.communicate("go\n", timeout=max(1.0, deadline - time.monotonic() + 60))
                    for p in procs]
            runs = [json.loads(o.strip().splitlines()[-1]) for (o, _), ok in zip(outs, ready, strict=True)
                    if ok and o.strip()]
            errors = [e.strip().splitlines()[-1] for (o, e), p in zip(outs, procs, strict=True)
                      if p.returncode != 0 and e.strip()]
            if not runs:
                rows.append({**row, "skipped": (errors or ["no worker finished"])[0][:80]})
                continue
            ips = [r["images_per_second"] for r in runs]
            peaks = [r["peak_mb"] for r in runs if r["peak_mb"] is not None]
            rows.append({**row, "per_trial": statistics.fmean(ips), "aggregate": sum(ips),
                         "peak_mb": max(peaks) if peaks else None, "failed": k - len(runs),
                         "accuracy": statistics.fmean(r["accuracy"] for r in runs)})
    return rows


def main_job(device: str, train_device: str, runs_dir: str, *, timeout: float,
             tiny: bool, auto_k: bool = False) -> dict[str, Any]:
    """The main job with training on ``train_device`` (latency on ``device``; ``auto_k``:
    ``--trials-per-device auto``) → exit status, wall seconds, the train devices recorded, the
    front (arch ids, accuracies) and the K the probe chose."""
    import csv

    name = f"main-{train_device.replace(':', '')}"
    cmd = [sys.executable, "-m", "nasl.cli", "search", *MAIN_JOB, "--device", device,
           "--train-device", train_device, "--name", name, "--runs-dir", runs_dir, "--quiet"]
    if auto_k:
        cmd += ["--trials-per-device", "auto"]
    if tiny:
        cmd += ["--trials", "2", "--epochs", "1", "--confirm-seeds", "0", "--no-baselines"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1))
        rc, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        rc, tail = None, [f"timed out after {timeout:.0f} s"]
    seconds = time.perf_counter() - t0
    rows, front = [], []
    run = Path(runs_dir) / name
    if (run / "trials.csv").is_file():
        with (run / "trials.csv").open() as f:
            rows = list(csv.DictReader(f))
    if (run / "pareto.csv").is_file():
        with (run / "pareto.csv").open() as f:
            front = [{"arch_id": r["arch_id"], "accuracy": float(r["accuracy"] or "nan"),
                      "macs": int(r["macs"])} for r in csv.DictReader(f)]
    env = json.loads((run / "env.json").read_text()) if (run / "env.json").is_file() else {}
    return {"command": " ".join(cmd[2:]).replace("nasl.cli", "nasl", 1), "rc": rc,
            "seconds": seconds, "tail": tail, "front": front,
            "packing": env.get("trials_per_device_auto"),
            "train_devices": sorted({r.get("train_device", "") for r in rows} - {""}),
            "images_per_second": [float(r["images_per_second"]) for r in rows
                                  if r.get("images_per_second")]}


def compare_fronts(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Overlap of two fronts by design (Jaccard of arch ids) and their best accuracies."""
    ia, ib = {r["arch_id"] for r in a}, {r["arch_id"] for r in b}
    best = [max((r["accuracy"] for r in f), default=float("nan")) for f in (a, b)]
    return {"shared": len(ia & ib), "jaccard": len(ia & ib) / len(ia | ib) if ia | ib else float("nan"),
            "best_accuracy": best}


def run_search(device: str, *, timeout: float, trials: int, epochs: int) -> dict[str, Any]:
    """Run the short search; its exit status, seconds, trials and the latency column."""
    import csv

    with tempfile.TemporaryDirectory() as tmp:
        cmd = search_cmd(device, tmp, trials=trials, epochs=epochs)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1))
            rc, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        except subprocess.TimeoutExpired:
            rc, tail = None, [f"timed out after {timeout:.0f} s"]
        seconds = time.perf_counter() - t0
        rows: list[dict[str, str]] = []
        for path in Path(tmp).glob("*/trials.csv"):
            with path.open() as f:
                rows = list(csv.DictReader(f))
    lat = [float(r["latency_ms"]) for r in rows if r.get("latency_ms")]
    return {"command": " ".join(cmd[2:]).replace("nasl.cli", "nasl", 1), "rc": rc,
            "seconds": seconds, "trials": len(rows),
            "states": sorted({r.get("state", "?") for r in rows}),
            "devices": sorted({r.get("device", "") for r in rows} - {""}),
            "latency_ms": lat, "tail": tail}


def _f(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def render(res: dict[str, Any]) -> str:
    """The Markdown report of :func:`main`'s results."""
    lines = [f"# GPU check on {res['device_name']} (`{res['device']}`)", "",
             f"{res['date']}; torch {res['torch']}; total {res['seconds']:.0f} s of a "
             f"{res['time_budget']:.0f} s budget.", "", "## Presets (batch 1)", "",
             "| preset | input | dtype | median ms | p10-p90 ms | CV % | spread of rounds % |",
             "|---|---|---|---|---|---|---|"]
    for r in res["presets"]:
        if "skipped" in r:
            lines.append(f"| {r['preset']} | {r['input']} | {r['dtype']} | skipped: {r['skipped']} "
                         "| | | |")
            continue
        lines.append(f"| {r['preset']} | {r['input']} | {r['dtype']} | {_f(r['median_ms'])} | "
                     f"{_f(r['p10_ms'])}-{_f(r['p90_ms'])} | {_f(r['cv_pct'], 1)} | "
                     f"{_f(r['rounds_spread_pct'], 1)} |")
    s = res.get("search")
    lines += ["", "## Short search", ""]
    if s is None:
        lines.append("Skipped (" + res.get("search_skipped", "not asked") + ").")
    else:
        lat = s["latency_ms"]
        lines += [f"`{s['command']}`: exit status {s['rc']}, {s['seconds']:.0f} s, {s['trials']} "
                  f"trials ({', '.join(s['states']) or 'none'}), latency device "
                  f"{', '.join(s['devices']) or '—'}, latency "
                  + (f"{min(lat):.3f}-{max(lat):.3f} ms." if lat else "none recorded.")]
        if s["rc"] != 0:
            lines += ["", "```", *s["tail"], "```"]
    lines += render_training(res)
    rk = res.get("ranking")
    lines += ["", "## GPU vs CPU latency ranking (ShuffleNet space)", ""]
    if not rk or not rk["designs"]:
        lines.append("Skipped (time budget).")
    else:
        lines += [f"Spearman {rk['spearman']:.3f} over {len(rk['designs'])} of {rk['requested']} "
                  "designs (GPU at batch 1 vs CPU at 1 thread).", "",
                  "| design | MMACs | GPU ms | CPU ms |", "|---|---|---|---|"]
        lines += [f"| {d['arch_id']} | {d['macs'] / 1e6:.1f} | {_f(d['device_ms'])} | {_f(d['cpu_ms'], 2)} |"
                  for d in rk["designs"]]
    return "\n".join(lines) + "\n"


def render_training(res: dict[str, Any]) -> list[str]:
    """The training-throughput table and the main-job lines of the report."""
    lines = ["", "## Proxy training: one trial and K at once on the device", ""]
    rows = res.get("training") or []
    if not rows:
        lines.append("Skipped (" + res.get("training_skipped", "time budget") + ").")
    else:
        lines += ["| precision | K | images/s per trial | aggregate images/s | peak MiB per trial "
                  "| failed |", "|---|---|---|---|---|---|"]
        for r in rows:
            if "skipped" in r:
                lines.append(f"| {r['precision']} | {r['k']} | skipped: {r['skipped']} | | | |")
                continue
            lines.append(f"| {r['precision']} | {r['k']} | {r['per_trial']:.0f} | "
                         f"{r['aggregate']:.0f} | {_f(r['peak_mb'], 0)} | {r['failed']} |")
    lines += ["", "## The main job trained on the device", ""]
    jobs = res.get("main_job") or {}
    if not jobs:
        lines.append("Skipped (" + res.get("main_job_skipped", "time budget") + ").")
    for where, j in jobs.items():
        ips = j["images_per_second"]
        lines.append(f"- training on {where}: `{j['command']}`: exit status {j['rc']}, "
                     f"{j['seconds']:.0f} s, trained on {', '.join(j['train_devices']) or '—'}, "
                     f"front of {len(j['front'])}, median "
                     + (f"{statistics.median(ips):.0f} images/s per trial." if ips else "— images/s."))
        pack = j.get("packing")
        if pack:
            levels = ", ".join(f"K={r['k']}: {r['aggregate']:.0f}" for r in pack["rows"]
                               if r.get("aggregate"))
            lines.append(f"  `--trials-per-device auto` chose K = {pack['k']} ({pack['reason']}; aggregate "
                         f"images/s {levels}; probe {pack['seconds']:.0f} s).")
        if j["rc"] != 0:
            lines += ["", "```", *j["tail"], "```"]
    cmp_ = res.get("fronts")
    if cmp_:
        lines.append(f"- fronts ({' vs '.join(jobs)}): {cmp_['shared']} designs shared, Jaccard "
                     f"{cmp_['jaccard']:.2f}, best accuracy "
                     + " vs ".join(f"{b:.3f}" for b in cmp_["best_accuracy"]) + ".")
    return lines


def default_out() -> Path:
    """``$OUT/gpu_check.md`` when ``$OUT`` is set, else ``gpu_check.md``."""
    return Path(os.environ["OUT"]) / "gpu_check.md" if os.environ.get("OUT") else Path("gpu_check.md")


def train_parts(res: dict[str, Any], device: str, dry: bool, t0: float, deadline: float) -> None:
    """Parts 4 and 5 into ``res``: throughput at K trials per device (fp32, bf16), then the
    main job trained on the device and, when time is left, on the CPU."""
    res["training"] = train_rows(device, ("fp32", "bf16"), (1, 2) if dry else TRAIN_KS,
                                 epochs=1 if dry else 2, subset=256 if dry else 4000,
                                 deadline=t0 + 0.6 * (deadline - t0))
    jobs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for train_device in (device, "cpu") if not dry else ("cpu", "cpu:again"):
            left = deadline - time.monotonic()
            if left < (10 if dry else 60):
                res["main_job_skipped"] = "time budget"
                break
            where = train_device.split(":again")[0]
            jobs[train_device] = main_job(device, where, tmp + "/" + str(len(jobs)),
                                          timeout=left - 5, tiny=dry, auto_k=not jobs)
    res["main_job"] = jobs
    if len(jobs) == 2:
        a, b = jobs.values()
        res["fronts"] = compare_fronts(a["front"], b["front"])


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda[:i] (default) or cpu (tests)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--tiny", action="store_true", help="small inputs, few runs (CPU tests)")
    p.add_argument("--time-budget", type=float, default=450.0, help="seconds (default 450)")
    p.add_argument("--no-search", action="store_true", help="skip the short search")
    p.add_argument("--designs", type=int, default=20)
    p.add_argument("--dry-run", action="store_true",
                   help="every part and code path on the CPU at tiny sizes (tests)")
    p.add_argument("--train-worker", nargs=4, metavar=("DEVICE", "PRECISION", "EPOCHS", "SUBSET"),
                   help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.train_worker:
        dev, precision, epochs, subset = a.train_worker
        print(json.dumps(train_worker(dev, precision, int(epochs), int(subset))), flush=True)
        return 0
    if a.dry_run:
        a.device, a.tiny = "cpu", True
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    from nasl.hardware.devices import cpu_name, resolve_device

    device = resolve_device(a.device)
    t0 = time.monotonic()
    deadline = t0 + a.time_budget
    cuda = device.startswith("cuda")
    dtypes = ("fp32", "fp16", "bf16") if cuda else ("fp32",)
    size = 64 if a.tiny else None
    res: dict[str, Any] = {
        "device": device, "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "time_budget": a.time_budget}
    # each part gets its share of what is left: presets 45 %, search 30 %, ranking the rest
    train = cuda or a.dry_run  # parts 4 and 5 (the main job replaces the short search)
    share = (0.25, 0.35) if train else (0.45, 1.0)  # of the budget: presets, then ranking
    res["presets"] = preset_rows(device, dtypes, rounds=2 if a.tiny else 3,
                                 repeats=5 if a.tiny else 50, input_size=size,
                                 deadline=t0 + share[0] * a.time_budget)
    left = deadline - time.monotonic()
    if a.no_search or train:
        res["search_skipped"] = "--no-search" if a.no_search else "the main job below instead"
    elif left < 60:
        res["search_skipped"] = "time budget"
    else:
        res["search"] = run_search(device, timeout=0.55 * left, trials=4, epochs=2)
    res["ranking"] = rank_rows(device, 4 if a.tiny else a.designs, input_size=size,
                               repeats=5 if a.tiny else 20, deadline=t0 + share[1] * a.time_budget)
    if train:
        train_parts(res, device, a.dry_run, t0, deadline)
    res["seconds"] = time.monotonic() - t0
    out = a.out or default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(res))
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    print(f"gpu_check: wrote {out} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
