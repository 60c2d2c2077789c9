"""nasl's trainer alone and beside a second training process (issue 12, item 3).

Each measurement is a fresh child process (OpenMP reads its wait policy once, when torch is
imported) that trains the ShuffleNet 0.5x g=3 proxy on digits at 32 px (batch 64) for a
fixed number of steps with ``train_model`` and reports the training images/s. It runs once
on its own ("quiet") and once while a competitor process trains ("busy"), side by side,
for each variant, alternating, ``--repeats`` times:

- ``spin``: libgomp's default wait policy (threads spin ~300k iterations before sleeping),
  what nasl did before (``GOMP_SPINCOUNT=300000`` is that default, set explicitly so that
  nasl leaves the policy alone);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (what the ``nasl`` command sets on a busy machine);
- ``1thread``: the default policy at 1 thread;
- ``adapt``: passive, 2 threads, ``adapt_threads=True`` (1 thread after a second of
  training whose threads waited for a core more than a quarter of the time);
- ``spin-adapt``: the default policy, 2 threads, ``adapt_threads=True`` (what a search does
  when the machine was quiet at its start).

The competitor is a plain torch training loop (does not import nasl, so it spins by
default) at ``--competitor-threads`` threads, or with ``--competitor nasl`` another nasl
``train_model`` loop. The background load from other users is reported per measurement:
the machine's busy cores (from /proc/stat) minus what the subject and competitor used.

    python bench/bench_contention.py --repeats 3
    python bench/bench_contention.py --variants spin passive --competitor nasl
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, tuple[dict[str, str], int]] = {
    "spin": ({"GOMP_SPINCOUNT": "300000"}, 2),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2),
    "1thread": ({"GOMP_SPINCOUNT": "300000"}, 1),
    "active": ({"OMP_WAIT_POLICY": "ACTIVE"}, 2),
    "spin10k": ({"GOMP_SPINCOUNT": "10000"}, 2),
    "adapt": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2),  # passive + train_model(adapt_threads=True)
    "spin-adapt": ({"GOMP_SPINCOUNT": "300000"}, 2),  # spinning + adapt_threads=True
}
OMP_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS")


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def subject(threads: int, steps: int, adapt: bool = False) -> None:
    """Child: train the proxy for ``steps`` steps; print a JSON line of the result."""
    sys.path.insert(0, str(ROOT))
    import nasl  # noqa: F401  (sets the wait policy before torch is imported)
    from nasl.data import load_dataset
    from nasl.families import preset
    from nasl.network.builder import build_model
    from nasl.training.train import TrainConfig, train_model

    data = load_dataset("digits", resolution=32, seed=0)
    arch = preset("shufflenet_v1", width_mult=0.5).with_io(
        input_size=32, num_classes=data.num_classes, in_channels=data.in_channels)
    cfg = TrainConfig(epochs=100, batch_size=64, max_steps=steps, bn_recalibrate=False)
    train_model(build_model(arch, seed=0), data, TrainConfig(max_steps=3), seed=0,
                threads=threads)  # warm-up: allocator, oneDNN kernels
    r = train_model(build_model(arch, seed=0), data, cfg, seed=0, threads=threads,
                    adapt_threads=adapt)
    print(json.dumps({"ips": r.images_per_second, "train_s": r.train_seconds,
                      "cpu_ratio": r.cpu_ratio, "wait_ratio": r.wait_ratio,
                      "contended": r.contended, "threads": r.threads,
                      "adapted_at_step": r.adapted_at_step}))


def competitor(kind: str, threads: int) -> None:
    """Child: train forever (until killed) with ``threads`` threads."""
    if kind == "nasl":
        sys.path.insert(0, str(ROOT))
        import nasl  # noqa: F401
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    if kind == "nasl":
        from nasl.data import load_dataset
        from nasl.families import preset
        from nasl.network.builder import build_model
        from nasl.training.train import TrainConfig, train_model

        data = load_dataset("digits", resolution=32, seed=1)
        arch = preset("shufflenet_v1", width_mult=0.5).with_io(
            input_size=32, num_classes=data.num_classes, in_channels=data.in_channels)
        print("ready", flush=True)
        while True:
            train_model(build_model(arch, seed=1), data, TrainConfig(epochs=5), seed=1,
                        threads=threads)
    torch.manual_seed(1)

    def block(i: int, o: int, s: int) -> list[nn.Module]:
        return [nn.Conv2d(i, i, 3, s, 1, groups=i, bias=False), nn.BatchNorm2d(i), nn.ReLU(),
                nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), *block(16, 32, 1),
                          *block(32, 64, 2), *block(64, 128, 2), *block(128, 128, 1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))
    print("ready", flush=True)
    while True:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OMP_KEYS}
    env.update(extra)
    return env


def measure(variant: str, busy: bool, args: argparse.Namespace) -> dict[str, float]:
    """One subject run, alone or beside a competitor → its result plus the background."""
    extra, threads = VARIANTS[variant]
    comp = None
    if busy:
        comp = subprocess.Popen(
            [sys.executable, __file__, "_competitor", args.competitor,
             str(args.competitor_threads)], stdout=subprocess.PIPE, text=True,
            env=_env({}), start_new_session=True)
        assert comp.stdout is not None
        comp.stdout.readline()  # "ready": imports done, about to train
        time.sleep(1.0)
    b0, t0 = _busy_jiffies()
    w0 = time.perf_counter()
    ch0 = os.times()
    comp_cpu0 = _proc_cpu(comp.pid) if comp is not None else 0.0
    out = subprocess.run([sys.executable, __file__, "_subject", str(threads), str(args.steps),
                          str(int(variant in ("adapt", "spin-adapt")))],
                         capture_output=True, text=True, env=_env(extra), check=True)
    wall = time.perf_counter() - w0
    b1, t1 = _busy_jiffies()
    ch1 = os.times()
    comp_cpu = 0.0
    if comp is not None:
        comp_cpu = _proc_cpu(comp.pid) - comp_cpu0
        os.killpg(comp.pid, signal.SIGKILL)
        comp.wait()
    res = json.loads(out.stdout.strip().splitlines()[-1])
    cores = len(os.sched_getaffinity(0))
    machine_busy = (b1 - b0) / max(1, t1 - t0) * cores  # cores busy on average
    subject_cpu = (ch1.children_user - ch0.children_user) + (ch1.children_system
                                                             - ch0.children_system)
    res["background"] = max(0.0, machine_busy - (subject_cpu + comp_cpu) / wall)
    res["machine_busy"] = machine_busy
    res["competitor_cores"] = comp_cpu / wall
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["spin", "passive", "1thread"],
                    choices=sorted(VARIANTS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40, help="training steps per measurement")
    ap.add_argument("--competitor", choices=["torch", "nasl"], default="torch")
    ap.add_argument("--competitor-threads", type=int, default=2)
    args = ap.parse_args()
    print(f"cores {len(os.sched_getaffinity(0))}, load {os.getloadavg()}, competitor "
          f"{args.competitor} x{args.competitor_threads} threads, {args.steps} steps x 64 images")
    rows: dict[str, dict[str, list[dict[str, float]]]] = {
        v: {"quiet": [], "busy": []} for v in args.variants}
    for rep in range(args.repeats):
        for v in args.variants:
            for mode in ("quiet", "busy"):
                r = measure(v, mode == "busy", args)
                rows[v][mode].append(r)
                wait = "-" if r["wait_ratio"] is None else f"{r['wait_ratio']:.2f}"
                print(f"rep {rep} {v:8s} {mode:5s} {r['ips']:8.0f} img/s  cpu_ratio "
                      f"{r['cpu_ratio']:.2f} wait_ratio {wait} contended {r['contended']}  "
                      f"competitor {r['competitor_cores']:.2f} cores, background "
                      f"{r['background']:.2f} cores (machine {r['machine_busy']:.2f})",
                      flush=True)
    print("\n| variant | threads | quiet img/s | busy img/s | busy / quiet | cpu_ratio quiet"
          " | cpu_ratio busy | background cores |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for v in args.variants:
        q = statistics.median(r["ips"] for r in rows[v]["quiet"])
        b = statistics.median(r["ips"] for r in rows[v]["busy"])
        ratios = [rb["ips"] / rq["ips"] for rq, rb in zip(rows[v]["quiet"], rows[v]["busy"],
                                                          strict=True)]
        cq = statistics.median(r["cpu_ratio"] for r in rows[v]["quiet"])
        cb = statistics.median(r["cpu_ratio"] for r in rows[v]["busy"])
        bg = max(r["background"] for m in ("quiet", "busy") for r in rows[v][m])
        print(f"| {v} | {VARIANTS[v][1]} | {q:,.0f} | {b:,.0f} | {statistics.median(ratios):.2f}"
              f" ({min(ratios):.2f}-{max(ratios):.2f}) | {cq:.2f} | {cb:.2f} | ≤ {bg:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_subject":
        subject(int(sys.argv[2]), int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "1")
    elif len(sys.argv) > 1 and sys.argv[1] == "_competitor":
        competitor(sys.argv[2], int(sys.argv[3]))
    else:
        main()
