"""``nasl latency calibrate|predict|serve``: a calibrated latency model per target, and a
latency server for a remote target, from the shell.

``calibrate SPACE`` measures kernels and ≤ 20 designs of the space on the target (the space's
``target`` section; ``--device``/``--runtime``/``--threads``/``--clock`` override it), fits
the predictor, reports its error and stores it at ``--out`` or
``$NASL_CACHE_DIR/latency/<space>-<fingerprint>.json`` (default ``~/.cache/nasl``).
``predict SPACE --set k=v ...`` loads the predictor of that target and predicts the design
(unset choices take their defaults); with ``--budget 5ms`` it also screens the design.
``serve --token-file F`` measures ONNX models sent by a remote search on this device
(:mod:`nasl.latency.serve`).
Wire with ``nasl.latency.cli.add_parser(sub)``; ``func(args)`` returns the exit status and
raises NaslError for user errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.units import parse_assignments
from nasl.common.vocab import KERNEL_DESIGNS, RUNTIMES


def _target(args: argparse.Namespace, space: Any) -> Any:
    from nasl.latency.measure import target_of_space

    try:
        return target_of_space(space, device=args.device, runtime=args.runtime,
                               threads=args.threads, clock=args.clock)
    except ValueError as e:
        raise NaslError(f"latency: {e}") from None


def _space(name: str) -> Any:
    from nasl.space import load_space
    from nasl.space.core import require_network

    space = load_space(name)
    require_network(space, "nasl latency")
    return space


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Calibrate, print the error, save; exit 0."""
    from nasl.latency.calibrate import MAX_DESIGNS, calibrate
    from nasl.latency.predictor import default_path

    space = _space(args.space)
    target = _target(args, space)
    if not 2 <= args.designs <= MAX_DESIGNS:
        raise NaslError(f"--designs {args.designs}: expected 2..{MAX_DESIGNS}")
    if args.kernel_designs < 0 or args.holdout < 0 or args.repeats < 1 or args.rounds < 1 \
            or args.kernel_rounds < 1:
        raise NaslError(f"--kernel-designs {args.kernel_designs}, --holdout {args.holdout}, "
                        f"--repeats {args.repeats}, --rounds {args.rounds}, --kernel-rounds "
                        f"{args.kernel_rounds}: expected --kernel-designs and --holdout >= 0, "
                        "--repeats, --rounds and --kernel-rounds >= 1")
    say = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    pred, details = calibrate(space, target, designs=args.designs, kernel_designs=args.kernel_designs,
                              holdout=args.holdout, seed=args.seed, repeats=args.repeats,
                              rounds=args.rounds, kernel_rounds=args.kernel_rounds, progress=say)
    path = pred.save(args.out or default_path(space.name, pred.fingerprint))
    e, n = pred.error, pred.noise
    print(f"latency predictor for {space.name} on {target.label()} ({pred.target['device_name']})")
    print(f"  measured: {details['designs']} designs, {details['kernels']} kernels "
          f"({details['seconds']['total']} s); calibration {pred.a:.4f} x sum + {pred.b:.4f} ms"
          + (f" + {pred.traffic.get('ms_per_m_weights', 0):.4f} ms per M weights + "
             f"{pred.traffic.get('ms_per_m_activations', 0):.4f} ms per M activations (memory-traffic "
             "correction)" if pred.traffic else "")
          + (" (per-stage correction: better in leave-one-out)" if pred.stage_a else ""))
    print(f"  error ({e['how']}): {100 * e['within_10pct']:.0f} % within ±10 %, Spearman "
          f"{e['spearman']:.3f}, median abs error {e['mdape_pct']:.1f} %, p95 {e['p95_abs_pct']:.1f} % "
          f"(screening margin {100 * pred.margin:.0f} %)")
    e0 = details.get("held_out_power_law")
    if e0:
        print(f"  kernels never measured: {pred.unmeasured} (the power law alone on the same "
              f"designs: {100 * e0['within_10pct']:.0f} % within ±10 %, Spearman {e0['spearman']:.3f})")
    if "retest_within_10pct" in e:
        print(f"  the machine against itself: one round's timing within ±10 % of the other rounds' "
              f"median for {100 * e['retest_within_10pct']:.0f} % (median abs deviation "
              f"{e['retest_mdape_pct']} %): the error above cannot be judged more finely")
    print(f"  machine noise: reference CV {n.get('reference_cv_pct')} %, CPU/wall median "
          f"{n.get('cpu_ratio_median')}")
    print("  " + clock_note(target.clock, n.get("cpu_ratio_median")))
    print(f"  saved: {path}")
    return 0


def clock_note(clock: str, cpu_ratio: float | None) -> str:
    """One line saying which clock the error was judged on and how the other one compares."""
    if clock == "cpu":
        return ("clock: the timing thread's CPU clock (steadier on a shared machine); a search "
                "times with the wall clock and loads only a wall-clock predictor: calibrate "
                "again without --clock cpu for it")
    if cpu_ratio is None:
        return "clock: wall clock (what a search times with and loads)"
    return (f"clock: wall clock (what a search times with and loads); the CPU clock read "
            f"{100 * cpu_ratio:.0f} % of it (median CPU/wall of the timed designs): "
            + ("the two agree" if cpu_ratio >= 0.9 else "the wall-clock times include waiting "
               "for a core; re-measure on a quiet machine"))


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict one design (and screen it against ``--budget``); exit 0."""
    from nasl.common.units import parse_budget
    from nasl.latency.predictor import Predictor, default_path, screen

    space = _space(args.space)
    target = _target(args, space)
    path = Path(args.predictor) if args.predictor else default_path(space.name, target.fingerprint())
    if not path.is_file():
        raise NaslError(f"no latency predictor at {str(path)!r} for {space.name} on {target.label()}; "
                        f"run `nasl latency calibrate {args.space}` with the same target first")
    try:
        pred = Predictor.load(path)
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        raise NaslError(f"{str(path)!r}: not a nasl latency predictor ({e})") from None
    if pred.fingerprint != target.fingerprint():
        raise NaslError(f"{str(path)!r} was calibrated for another target ({pred.fingerprint}, "
                        f"this is {target.fingerprint()}); calibrate again")
    params = space.complete(parse_assignments(args.set), where=("--set",))
    arch = space.to_arch(params)
    out: dict[str, Any] = {"space": space.name, "arch_id": arch.id, "macs": arch.macs(),
                           "predicted_ms": pred.predict(arch), "target": target.label(),
                           "error": pred.error, "margin": pred.margin}
    if args.budget:
        metric, value = parse_budget(args.budget)
        if metric != "latency_ms":
            raise NaslError(f"--budget {args.budget!r}: expected a latency such as 5ms or 300us")
        ms, over = screen(pred, arch, value)
        out.update(budget_ms=value, clearly_over=over)
    if args.json:
        print(json.dumps(out))
        return 0
    line = f"{space.name} {arch.id}: {out['predicted_ms']:.3f} ms predicted on {target.label()}"
    line += f" (± {100 * pred.margin:.0f} % at p95)"
    if args.budget:
        line += f"; budget {out['budget_ms']:g} ms: " + ("clearly over" if out["clearly_over"]
                                                        else "measure to decide")
    print(line)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve latency measurements until Ctrl-C; exit 0."""
    import logging

    from nasl.latency.serve import LatencyService, make_server
    from nasl.latency.wire import read_token

    if args.max_mb <= 0 or args.time_limit <= 0 or args.window <= 0:
        raise NaslError("--max-mb, --time-limit and --window must be > 0")
    try:
        token = read_token(args.token_file)
        service = LatencyService(token, device=args.device, max_bytes=int(args.max_mb * 2**20),
                                 time_limit=args.time_limit, window=args.window)
    except ValueError as e:
        raise NaslError(f"nasl latency serve: {e}") from None
    try:
        server = make_server(service, args.host, args.port)
    except OSError as e:
        raise NaslError(f"nasl latency serve: cannot listen on {args.host}:{args.port}: "
                        f"{e.strerror}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr, force=True)
    host, port = server.server_address[:2]
    fp = service.fingerprint
    print(f"nasl latency serve: listening on {host}:{port}, device {fp['device']} "
          f"({fp['gpu'] or fp['cpu']}), onnxruntime {fp['onnxruntime']}, fingerprint {fp['id']}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help="a shipped space name or a YAML file")
    p.add_argument("--device", default=None, help="cpu, cuda[:i] (default: the space's target)")
    p.add_argument("--runtime", default=None, choices=RUNTIMES,
                   help="deployment runtime (default: the space's target.runtime)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads")
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                   help="wall time (default), or the timing thread's CPU time (1 thread on "
                        "CPU: robust on a shared machine)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``nasl latency calibrate|predict`` on the ``nasl`` subparsers."""
    sp = sub.add_parser("latency", help="calibrate and use a latency model per target")
    lsub = sp.add_subparsers(dest="latency_command", metavar="SUBCOMMAND")
    lsub.required = True
    c = lsub.add_parser("calibrate", help="measure kernels and <= 20 designs, fit, report error")
    _common(c)
    c.add_argument("--designs", type=int, default=20, help="measured calibration designs (<= 20)")
    c.add_argument("--kernel-designs", type=int, default=KERNEL_DESIGNS,
                   help="more sampled designs whose kernels (not the whole) are measured "
                        f"(default {KERNEL_DESIGNS})")
    c.add_argument("--holdout", type=int, default=0,
                   help="held-out designs measured only to report the error (default 0: "
                        "leave-one-out on the calibration designs)")
    c.add_argument("--repeats", type=int, default=20, help="timed runs per design (median)")
    c.add_argument("--rounds", type=int, default=1,
                   help="time every whole design in this many round-robin rounds and keep the "
                        "median (default 1; 3 on a shared machine, and to see its noise floor)")
    c.add_argument("--kernel-rounds", type=int, default=1,
                   help="repeat the kernel sweep this many times and keep each kernel's median "
                        "(default 1; 3 on a shared machine: a kernel timed once in a slow moment "
                        "errs every design containing it)")
    c.add_argument("--seed", type=int, default=0, help="seed of the sampled designs")
    c.add_argument("--out", type=Path, default=None, help="where to save (default: the cache)")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.set_defaults(func=cmd_calibrate)
    p = lsub.add_parser("predict", help="predict a design's latency (and screen a budget)")
    _common(p)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a design choice")
    p.add_argument("--predictor", default=None, help="a predictor file (default: the cache)")
    p.add_argument("--budget", default=None, help="a latency budget, e.g. 5ms")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)
    s = lsub.add_parser("serve", help="measure ONNX models sent by a search (run on the target "
                        "device; see docs/remote-latency.md)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: a free one)")
    s.add_argument("--token-file", required=True,
                   help="file holding the shared secret (chmod 600; >= 16 characters)")
    s.add_argument("--device", default="auto", help="cpu, cuda[:i] or auto (default)")
    s.add_argument("--max-mb", type=float, default=64.0, help="largest model accepted (MiB)")
    s.add_argument("--time-limit", type=float, default=120.0,
                   help="seconds one request may wait for and hold the device (default 120)")
    s.add_argument("--window", type=float, default=60.0,
                   help="seconds a request's timestamp may be off (and its nonce is kept)")
    s.set_defaults(func=cmd_serve)
