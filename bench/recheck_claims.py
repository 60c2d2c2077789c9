"""Re-check a run's claims, "undecided"s and recommendation with an independent training loop
on the data set's test split, under two recipes (issue 18).

The loop here shares nothing with ``nasl.training.train`` but the network (built from the run's
design by ``nasl.network.builder``): plain PyTorch SGD (nesterov, momentum 0.9) with a one-cycle
learning-rate schedule, on the whole training split, tested on the test split, under

* ``plain``: no augmentation, weight decay 5e-5;
* ``augmented``: random crop (zero padding of side/8, per image) and horizontal flip, weight
  decay 5e-4 — how small vision models are trained to be shipped.

Designs: every design of the run's answer (claims and recommendation), the front and the
baselines, up to ``--max-designs`` (answer designs first). Then a second seed for both
designs of every claim whose truth is within ``--contested`` points of where the claim
flips (0 for superiority, −δ for non-inferiority). Out: one JSON line per
training (``--out``, appended; a rerun skips what is there) and a Markdown summary: claims
that hold under the recipe they name, undecided ones, Kendall τ of the search's accuracies
(before) and of the confirmation's accuracies (after) against each truth, and whether each
recommendation is within noise of the truly best re-checked design.

    python bench/recheck_claims.py runs/fm10k --data npz:fm10k.npz --out runs/fm10k/recheck.jsonl
    python bench/recheck_claims.py runs/fm10k --data npz:fm10k.npz --out ... --summarize
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.data import load_dataset  # noqa: E402
from nasl.network.builder import build_model  # noqa: E402
from nasl.run.results import load_run  # noqa: E402
from nasl.space import load_space  # noqa: E402

RECIPES = {"plain": {"wd": 5e-5, "augment": False}, "augmented": {"wd": 5e-4, "augment": True}}


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per-image random crop (zero padding side/8) and horizontal flip (a crop is a window of
    the padded image taken with unfold; written apart from nasl.training.augment)."""
    n, c, h, w = x.shape
    p = max(1, round(h / 8))
    xp = torch.nn.functional.pad(x, (p, p, p, p))
    oy = torch.randint(0, 2 * p + 1, (n,), generator=g)
    ox = torch.randint(0, 2 * p + 1, (n,), generator=g)
    windows = xp.unfold(2, h, 1).unfold(3, w, 1)  # n, c, 2p+1, 2p+1, h, w (a view)
    out = windows[torch.arange(n), :, oy, ox]  # n, c, h, w
    flip = (torch.rand(n, generator=g) < 0.5)[:, None, None, None]
    return torch.where(flip, out.flip(-1), out)


def train_eval(model: nn.Module, data: Any, recipe: str, epochs: int, seed: int,
               batch: int = 128, lr: float = 0.1) -> float:
    """Train with one-cycle SGD on data.train_*, return test accuracy (0..1)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    r = RECIPES[recipe]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=r["wd"])
    steps = epochs * (len(data.train_y) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(data.train_y), generator=g)
        for i in range(len(perm) // batch):
            idx = perm[i * batch:(i + 1) * batch]
            xb, yb = data.train_x[idx], data.train_y[idx]
            if r["augment"]:
                xb = augment(xb, g)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(data.test_y), 1000):
            correct += int((model(data.test_x[i:i + 1000]).argmax(1) == data.test_y[i:i + 1000]).sum())
    return correct / len(data.test_y)


def designs_of(rows: list[dict[str, Any]], answer: dict[str, Any] | None, cap: int) -> list[int]:
    """Trial numbers to re-check: the answer's designs first, then front and baselines."""
    order: list[int] = []
    for r in (answer or {}).get("recipes", []):
        for p in r["recommendation"]:
            order += [int(p["design"])] + ([int(p["runner_up"])] if p.get("runner_up") else [])
        for c in r["claims"]:
            order += [int(c["design"]), int(c["other"])]
    ok = [r for r in rows if r["state"] == "COMPLETE" and r.get("feasible")]
    order += [int(r["number"]) for r in ok if r.get("pareto")]
    order += [int(r["number"]) for r in ok if r.get("baseline")]
    return list(dict.fromkeys(order))[:cap]


def kendall(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic) if len(a) >= 3 else None


def tau_ceiling(means: list[float], sd: float, seeds: list[int], draws: int = 2000) -> float:
    """Expected Kendall τ between the true order of ``means`` and one re-check of them with
    seed noise ``sd`` (each mean over its number of ``seeds``)."""
    rng = np.random.default_rng(0)
    m = np.asarray(means)
    scale = sd / np.sqrt(np.asarray(seeds, dtype=float))
    return float(np.mean([kendall(list(m), list(m + rng.normal(0, scale))) for _ in range(draws)]))


def confirmed_by_recipe(run: Path) -> dict[str, dict[int, tuple[float, int]]]:
    """Recipe → design → (mean confirmation accuracy over its fresh seeds, seeds), from the
    run's study (what the report states per recipe)."""
    from nasl.run.results import RunDir, open_run_study

    study, _ = open_run_study(RunDir(run))
    decide = study.user_attrs.get("decide") or {}
    return {rec: {int(n): (float(np.mean(d["accuracies"])), len(d["accuracies"]))
                  for n, d in v.get("designs", {}).items() if d.get("accuracies")}
            for rec, v in decide.items()}


def table(run: Path, lines: list[dict[str, Any]]) -> str:
    """A Markdown table: every re-checked design, its search accuracy, its confirmation per
    recipe (mean, seeds) and its truth per recipe (mean of its seeds)."""
    rows, _ = load_run(run)
    by = {int(r["number"]): r for r in rows}
    conf = confirmed_by_recipe(run)
    truth: dict[str, dict[int, list[float]]] = {}
    for x in lines:
        truth.setdefault(x["recipe"], {}).setdefault(int(x["number"]), []).append(x["accuracy"])
    recs = sorted(truth)
    head = (["design", "MACs", "search"] + [f"confirmed {r}" for r in sorted(conf)]
            + [f"truth {r}" for r in recs])
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    order = sorted({n for v in truth.values() for n in v},
                   key=lambda n: -float(np.mean(truth.get(recs[0], {}).get(n, [0]))))
    for n in order:
        r = by[n]
        name = f"#{n}" + (f" ★{r['baseline'].removeprefix('shufflenet_')}" if r.get("baseline") else "")
        cells = [name, f"{float(r['macs']) / 1e6:.1f} M", f"{100 * float(r['accuracy']):.1f}"]
        cells += [f"{100 * conf[c][n][0]:.1f} ({conf[c][n][1]})" if n in conf[c] else "–"
                  for c in sorted(conf)]
        for t in recs:
            v = truth[t].get(n)
            seeds = f" ({len(v)})" if v and len(v) > 1 else ""
            cells.append("–" if not v else f"{100 * float(np.mean(v)):.1f}{seeds}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def summarize(run: Path, lines: list[dict[str, Any]]) -> str:
    rows, env = load_run(run)
    by = {int(r["number"]): r for r in rows}
    ans = env.get("answer") or {}
    conf = confirmed_by_recipe(run)
    truth: dict[str, dict[int, list[float]]] = {}
    for x in lines:
        truth.setdefault(x["recipe"], {}).setdefault(int(x["number"]), []).append(x["accuracy"])
    out = [f"run {run.name}: {len({x['number'] for x in lines})} designs re-checked, "
           f"{len(lines)} trainings, {lines[0]['epochs']} epochs, test split", table(run, lines)]
    for r in ans.get("recipes", []):
        rec = r["recipe"].split("+")[0]
        t = {n: float(np.mean(v)) for n, v in truth.get(rec, {}).items()}
        confirmed = {n: m for n, (m, _) in conf.get(r["recipe"], conf.get(rec, {})).items()}
        held = [c for c in r["claims"] if c["status"] == "holds"]
        ok = 0
        checked = 0
        for c in held:
            a, b = int(c["design"]), int(c["other"])
            if a in t and b in t:
                checked += 1
                ok += (t[a] - t[b] > 0) if c["kind"] == "superior" else (t[a] - t[b] > -c["margin"])
        out.append(f"\nunder {r['recipe']}: {len(held)} claims, {checked} re-checked, {ok} hold"
                   + (f" ({ok / checked:.0%})" if checked else ""))
        for c in r["claims"]:
            a, b = int(c["design"]), int(c["other"])
            tr = (f"truth {100 * t[a]:.1f} vs {100 * t[b]:.1f}" if a in t and b in t else "not re-checked")
            out.append(f"  [{c['status']}] {c['text']} — {tr}")
        done = sorted(t)
        if len(done) >= 3:
            before = kendall([float(by[n]["accuracy"]) for n in done], [t[n] for n in done])
            conf_n = [n for n in done if n in confirmed]
            after = kendall([confirmed[n] for n in conf_n], [t[n] for n in conf_n])
            same = kendall([float(by[n]["accuracy"]) for n in conf_n], [t[n] for n in conf_n])
            r2 = lambda x: None if x is None else round(x, 2)  # noqa: E731
            exp_n = [n for n in done if by[n].get("accuracy_expected") is not None]
            expected = kendall([float(by[n]["accuracy_expected"]) for n in exp_n], [t[n] for n in exp_n])
            out.append(f"  Kendall τ vs truth: search accuracies (before) {r2(before)} on "
                       f"{len(done)} designs; on the {len(conf_n)} confirmed: search {r2(same)} → "
                       f"confirmed (after) {r2(after)}; the selection-corrected column "
                       f"(accuracy_expected) {r2(expected)} on {len(exp_n)} designs")
            best = max(done, key=lambda n: t[n])
            sd = np.sqrt(np.mean([np.var(v, ddof=1) for v in truth[rec].values() if len(v) > 1] or [np.nan]))
            if sd == sd:
                seeds = {n: len(truth[rec][n]) for n in done}
                out.append(f"  τ ceiling: a perfect ranking scored against a truth with its own seed noise "
                           f"(sd {100 * sd:.2f} points, from the designs with 2 seeds): "
                           f"{r2(tau_ceiling([t[n] for n in done], sd, [seeds[n] for n in done]))} on "
                           f"{len(done)} designs (an upper bound: the truth's spread includes its noise)")
            for p in r["recommendation"]:
                n = int(p["design"])
                if n in t:
                    gap = 100 * (t[best] - t[n])
                    noise = 2 * math.sqrt(2) * 100 * sd if sd == sd else float("nan")
                    out.append(f"  {p['label']}: {p['name']} truth {100 * t[n]:.1f} %, truly best "
                               f"re-checked #{best} {100 * t[best]:.1f} % (gap {gap:.1f} points; "
                               f"2-se noise of a difference {noise:.1f})")
    return "\n".join(out)


def design_choices(run: Path) -> dict[int, dict[str, Any]]:
    """Trial number → the design's choices, read from the run's study."""
    from nasl.run.results import RunDir, open_run_study

    study, _ = open_run_study(RunDir(run))
    return {t.number: t.user_attrs["choices"] for t in study.get_trials() if "choices" in t.user_attrs}


def unique(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first line of each (recipe, design, seed, epochs): two re-check processes started
    together (one per recipe) may both copy the same reused lines."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for x in lines:
        k = (x["recipe"], x["number"], x["seed"], x["epochs"])
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


def reuse(run: Path, out: Path, choices: dict[int, dict[str, Any]], have: list[dict[str, Any]],
          dest: Path) -> list[dict[str, Any]]:
    """Copy ``run``'s re-check lines (``out``) of designs with the same choices as a design of
    this run into ``dest`` under this run's trial number (``from`` names the source)."""
    theirs = design_choices(run)
    key = lambda c: json.dumps(c, sort_keys=True)  # noqa: E731
    mine: dict[str, int] = {}
    for n, c in sorted(choices.items()):
        mine.setdefault(key(c), n)
    done = {(x["recipe"], x["number"], x["seed"], x["epochs"]) for x in have}
    new = []
    for x in (json.loads(s) for s in out.read_text().splitlines()):
        n = mine.get(key(theirs.get(int(x["number"]), {})))
        if n is None or (x["recipe"], n, x["seed"], x["epochs"]) in done or "from" in x:
            continue
        new.append({**x, "number": n, "from": f"{run.name} #{x['number']}"})
        done.add((x["recipe"], n, x["seed"], x["epochs"]))
    with dest.open("a") as f:
        for x in new:
            f.write(json.dumps(x) + "\n")
    return new


def reuse_baselines(out: Path, space: Any, rows: list[dict[str, Any]], have: list[dict[str, Any]],
                    dest: Path) -> list[dict[str, Any]]:
    """Copy the lines of the paper baselines from another run's re-check JSONL (``out``) of the
    same space, budget and data into ``dest``, when that run's folder is gone. A search enqueues
    the space's baselines within budget first, in the space's order, so trial k < their number
    is the same design in every such run; this is checked on this run's trials (its baseline
    trials must be 0, 1, ... in the space's order) before anything is copied."""
    mine = sorted((int(r["number"]), r["baseline"]) for r in rows if r.get("baseline"))
    order = [b for b in space.baselines if b in {n for _, n in mine}]
    if [k for k, _ in mine] != list(range(len(mine))) or [n for _, n in mine] != order:
        raise SystemExit("--reuse-baselines: this run's baselines are not trials 0.. in the "
                         "space's order; use --reuse RUN JSONL")
    names = [n for _, n in mine]
    done = {(x["recipe"], x["number"], x["seed"], x["epochs"]) for x in have}
    new = []
    for x in (json.loads(s) for s in out.read_text().splitlines()):
        n = int(x["number"])
        if n >= len(names) or (x["recipe"], n, x["seed"], x["epochs"]) in done:
            continue
        new.append({**x, "from": x.get("from") or f"{out.name} #{n} ({names[n]})"})
        done.add((x["recipe"], n, x["seed"], x["epochs"]))
    with dest.open("a") as f:
        for x in new:
            f.write(json.dumps(x) + "\n")
    return new


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=None, help="default: 10 x the run's epochs")
    p.add_argument("--recipes", nargs="+", default=["augmented", "plain"])
    p.add_argument("--max-designs", type=int, default=12)
    p.add_argument("--contested", type=float, default=1.0, help="points")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--summarize", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: one process per recipe side by side; two "
                        "processes of two threads each on two cores spin-wait and crawl)")
    p.add_argument("--reuse", nargs=2, action="append", default=[], metavar=("RUN", "JSONL"),
                   help="take the trainings of identical designs (same choices, recipe, seed, "
                        "epochs) from another run's re-check on the same data instead of "
                        "training them again")
    p.add_argument("--reuse-baselines", nargs="+", default=[], type=Path, metavar="JSONL",
                   help="take the paper baselines' trainings from earlier re-checks of the same "
                        "space and data whose run folders are gone (baselines are trials 0.. in "
                        "the space's order in every run; checked on this run)")
    a = p.parse_args()
    lines = unique([json.loads(x) for x in a.out.read_text().splitlines()]) if a.out.exists() else []
    if a.summarize:
        print(summarize(a.run, lines))
        return
    torch.set_num_threads(max(1, a.threads))
    rows, env = load_run(a.run)
    space = load_space(a.run / "space.yaml")
    epochs = a.epochs or 10 * int(env["epochs"])
    choices = design_choices(a.run)
    todo = designs_of(rows, env.get("answer"), a.max_designs)
    for other_run, other_out in a.reuse:
        lines += reuse(Path(other_run), Path(other_out), choices, lines, a.out)
    for other_out in a.reuse_baselines:
        lines += reuse_baselines(other_out, space, rows, lines, a.out)
    cache: dict[int, Any] = {}
    done = {(x["recipe"], x["number"], x["seed"]) for x in lines}

    def one(recipe: str, n: int, seed: int) -> None:
        if a.out.exists():  # another re-check process (e.g. one per recipe) may have done it
            done.update((x["recipe"], x["number"], x["seed"])
                        for x in map(json.loads, a.out.read_text().splitlines()))
        if (recipe, n, seed) in done:
            return
        params = choices[n]
        res = space.proxy_arch(params, 1, 3).input_size
        if res not in cache:
            cache[res] = load_dataset(a.data, resolution=res, seed=0, split="final")
        data = cache[res]
        model = build_model(space.proxy_arch(params, data.num_classes, data.in_channels), seed=seed)
        t0, c0 = time.perf_counter(), time.process_time()
        acc = train_eval(model, data, recipe, epochs, seed)
        wall = time.perf_counter() - t0
        line = {"recipe": recipe, "number": n, "seed": seed, "accuracy": acc, "epochs": epochs,
                "seconds": round(wall, 1), "cpu_wall": round((time.process_time() - c0) / wall, 2),
                "date": time.strftime("%Y-%m-%d %H:%M")}
        with a.out.open("a") as f:
            f.write(json.dumps(line) + "\n")
        lines.append(line)
        done.add((recipe, n, seed))
        print(f"{recipe} #{n} seed {seed}: {100 * acc:.1f} % in {wall:.0f} s", flush=True)

    for n in todo:
        for recipe in a.recipes:
            one(recipe, n, 0)
    for r in (env.get("answer") or {}).get("recipes", []):
        rec = r["recipe"].split("+")[0]
        if rec not in a.recipes:  # one process per recipe: each trains its own second seeds
            continue
        t = {x["number"]: x["accuracy"] for x in lines if x["recipe"] == rec}
        for c in r["claims"]:
            d, o = int(c["design"]), int(c["other"])
            edge = -c["margin"] if c["kind"] == "noninferior" else 0.0  # where the claim flips
            if d in t and o in t and abs(t[d] - t[o] - edge) < a.contested / 100:
                one(rec, d, 1)
                one(rec, o, 1)
    print(summarize(a.run, lines))


if __name__ == "__main__":
    main()
