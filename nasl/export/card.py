"""The model card (``card.md``) of an export: facts in, Markdown out (no torch).

In: a dict of facts assembled by :mod:`nasl.export.pipeline` and
:func:`nasl.export.artifacts.export_arch`. Every key is optional except ``model``:

- ``title``, ``command``, ``summary``: strings
- ``source``: ``kind`` (run/preset/arch), ``run``, ``trial``, ``pick``, ``pick_rule``,
  ``baseline``, ``preset``, ``overrides``, ``feasible``, ``reason``
- ``choices``: design choice → value
- ``model`` / ``target``: ``input_shape``, ``num_classes``, ``macs``, ``params``,
  ``size_mb``; ``target`` may add ``macs_recorded``, ``params_recorded``, ``matches``
- ``latency``: ``median_ms``, ``p10_ms``, ``p90_ms``, ``device``, ``device_name``,
  ``threads``, ``batch_size``, ``dtype``, ``repeats``, ``runtime``, ``source``, and
  ``export``: the same facts measured again at export time (plus ``ratio``, ``cpu_ratio``)
  or ``{"error": why}``
- ``accuracy``: ``proxy``, ``proxy_epochs``, ``test``, ``best_test``, ``epochs``, ``data``,
  ``resolution``, ``trained``
- ``training``: the recipe (a dict), ``space``: name, family, objectives, budgets, sampler,
  trials, path, yaml; ``files``: name → bytes; ``parity``; ``versions``.

Out: Markdown text. Integers are printed in full with thousands separators (``1,234,567``).
"""

from __future__ import annotations

from typing import Any


def _int(v: Any) -> str:
    if v is None:
        return "—"
    v = int(v)
    short = f" ({v / 1e6:.2f} M)" if v >= 1e5 else ""
    return f"{v:,}{short}"


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.2f} %"


def _val(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return "—" if v is None else str(v)


def _floats(v: Any) -> str:
    return "[" + ", ".join(f"{float(x):.6g}" for x in v) + "]"


def _shape(v: Any) -> str:
    return "—" if v is None else "(" + ", ".join(str(x) for x in v) + ")"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _source(info: dict[str, Any]) -> list[str]:
    src = info.get("source", {})
    lines = ["## Where it came from", ""]
    kind = src.get("kind", "arch")
    if kind == "run":
        how = f"picked with `--pick {src['pick']}`" if src.get("pick") else "chosen with `--trial`"
        lines.append(f"Trial **{src.get('trial')}** of run `{src.get('run')}`, {how}.")
        if src.get("pick_rule"):
            lines += ["", src["pick_rule"]]
        if src.get("baseline"):
            lines += ["", f"This trial is the space's baseline `{src['baseline']}`."]
        if src.get("feasible") is False:
            why = src.get("reason") or "no reason recorded"
            lines += ["", f"Note: the search marked this trial infeasible ({why})."]
    elif kind == "preset":
        over = src.get("overrides") or {}
        extra = (" with " + ", ".join(f"`{k}={_val(v)}`" for k, v in over.items())) if over else ""
        lines.append(f"The paper preset `{src.get('preset')}`{extra}.")
    else:
        lines.append("An ArchConfig exported directly.")
    if info.get("command"):
        lines += ["", "Command:", "", "```", info["command"], "```"]
    return lines + [""]


def _costs(info: dict[str, Any]) -> list[str]:
    model, target = info["model"], info.get("target")
    label = info.get("target_label", "target (as searched)")
    header = ["", "exported model"] + ([label] if target else [])
    rows = []
    for label, key, fmt in (("input shape", "input_shape", _shape), ("classes", "num_classes", _val),
                            ("MACs", "macs", _int), ("params", "params", _int)):
        rows.append([label, fmt(model.get(key))] + ([fmt(target.get(key))] if target else []))
    rows.append(["size (fp32)", f"{model['size_mb']:.3f} MiB"]
                + ([f"{target['size_mb']:.3f} MiB"] if target else []))
    lines = ["## Costs", "",
             "MACs are multiply-accumulates of convolutions and linear layers for one image "
             "(BN, activations, pooling count zero); params are trainable parameters.", ""]
    lines += _table(header, rows)
    if target and target.get("macs_recorded") is not None:
        ok = target.get("matches")
        lines += ["", f"Recorded for the trial: {_int(target['macs_recorded'])} MACs, "
                  f"{_int(target['params_recorded'])} params. Rebuilt target network: "
                  + ("**identical**." if ok else "**differs** (the space or nasl changed since the run).")]
    return lines + [""]


def _latency(info: dict[str, Any]) -> list[str]:
    lat = info.get("latency")
    lines = ["## Latency", ""]
    if not lat or lat.get("median_ms") is None:
        return lines + ["Not measured.", ""]
    where = lat.get("device_name") or lat.get("device") or "unknown device"
    lines.append(f"**{lat['median_ms']:.3f} ms** median (p10 {lat.get('p10_ms', 0):.3f} ms, "
                 f"p90 {lat.get('p90_ms', 0):.3f} ms) for the target network on {where} "
                 f"(`{lat.get('device', '?')}`).")
    details = [f"{k} {lat[k]}" for k in ("runtime", "threads", "batch_size", "dtype", "repeats")
               if lat.get(k)]
    if details or lat.get("source"):
        lines += ["", "; ".join(details) + (f"; {lat['source']}" if lat.get("source") else "") + "."]
    return lines + _export_latency(lat) + [""]


def _export_latency(lat: dict[str, Any]) -> list[str]:
    """Search-time vs export-time latency (``lat["export"]``), same runtime and device."""
    ex = lat.get("export")
    if not ex:
        return []
    if ex.get("error"):
        return ["", f"Export-time check in runtime `{ex.get('runtime')}` on `{ex.get('device')}`: "
                f"not measured ({ex['error']})."]

    def row(label: str, d: dict[str, Any]) -> list[str]:
        spread = f"{d.get('p10_ms') or 0:.3f}-{d.get('p90_ms') or 0:.3f}"
        return [label, f"{d['median_ms']:.3f}", spread, str(d.get("runtime") or "torch"),
                str(d.get("device") or "?"), str(d.get("threads") or "—")]

    out = ["", "Search time vs export time (the target network, same runtime and device):", ""]
    out += _table(["", "median ms", "p10-p90 ms", "runtime", "device", "threads"],
                  [row("search", lat), row("export", ex)])
    if ex.get("ratio") is not None:
        out += ["", f"Export / search: {ex['ratio']:.2f}x"
                + (f" (CPU/wall ratio while timing: {ex['cpu_ratio']:.2f}; below about 0.9 the "
                   "core was shared and the time is inflated)" if ex.get("cpu_ratio") else "") + "."]
    return out


def _accuracy(info: dict[str, Any]) -> list[str]:
    acc = info.get("accuracy", {})
    lines = ["## Accuracy", ""]
    rows = []
    if acc.get("proxy") is not None:
        rows.append(["proxy (search)", _pct(acc.get("proxy")), "search validation split (carved from the "
                     f"training data), {_val(acc.get('proxy_epochs'))} epoch(s)"])
    if acc.get("trained"):
        rows.append(["test", _pct(acc.get("test")),
                     f"test split of `{acc.get('data')}` (never seen by the search), after "
                     f"{acc.get('epochs')} epoch(s) on the full training split at "
                     f"{acc.get('resolution')} px; last epoch, not the best"])
    else:
        rows.append(["test", "—", "not trained (`--no-train`): the weights are a fresh initialisation"])
    lines += _table(["", "accuracy", "measured on"], rows)
    if info.get("training"):
        recipe = ", ".join(f"{k}={_val(v)}" for k, v in info["training"].items())
        lines += ["", f"Training recipe: {recipe}."]
    return lines + [""]


def _space(info: dict[str, Any]) -> list[str]:
    sp = info.get("space")
    if not sp:
        return []
    lines = ["## Search space", ""]
    for label, key in (("space", "name"), ("family", "family"), ("file", "path"),
                       ("sampler", "sampler"), ("trials", "trials")):
        if sp.get(key) is not None:
            lines.append(f"- {label}: `{sp[key]}`")
    if sp.get("objectives"):
        lines.append("- objectives: " + ", ".join(f"{m} ({d})" for m, d in sp["objectives"]))
    if sp.get("budgets") is not None:
        lines.append("- budgets: " + (", ".join(f"{k} ≤ {v:g}" for k, v in sp["budgets"].items())
                                      or "none"))
    if sp.get("yaml"):
        lines += ["", "<details><summary>space.yaml</summary>", "", "```yaml", sp["yaml"].rstrip(),
                  "```", "", "</details>"]
    return lines + [""]


def _files(info: dict[str, Any]) -> list[str]:
    parity = info.get("parity", {})
    by_file = {p["file"]: p for p in parity.values()}
    rows = []
    for name, size in info.get("files", {}).items():
        p = by_file.get(name)
        check = f"max abs diff {p['max_abs_diff']:.2g} ≤ {p['tolerance']:.3g}" if p else ""
        rows.append([f"`{name}`", "—" if size is None else f"{size:,}", check])
    lines = ["## Files", ""] + _table(["file", "bytes", "checked against the eager model"], rows)
    if parity:
        top = max(p.get("max_abs_output", 1.0) for p in parity.values())
        lines += ["", "Parity: outputs on a random batch of 2 compared with the eager PyTorch model; "
                  f"tolerances are multiplied by the largest |logit| when it exceeds 1 (here {top:.3g})."]
    mean, std = info["model"].get("mean"), info["model"].get("std")
    if mean is not None:
        lines += ["", f"Input normalisation (per channel, raw pixel scale): mean {_floats(mean)}, "
                  f"std {_floats(std)} (`MEAN`/`STD` in model.py)."]
    return lines + [""]


def _usage(info: dict[str, Any]) -> list[str]:
    files = info.get("files", {})
    shape = tuple(info["model"]["input_shape"])
    code = ["import torch", "", f"x = torch.randn{shape}  # normalised images, any batch size"]
    if "model.py" in files:
        code += ["", "# model.py + weights.safetensors: needs only torch and safetensors",
                 "from model import load_model", "logits = load_model()(x)"]
    if "model.onnx" in files:
        code += ["", "# model.onnx: input 'input', output 'logits', dynamic batch",
                 "import onnxruntime as ort",
                 "session = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])",
                 "logits = session.run(None, {'input': x.numpy()})[0]"]
    if "model.pt2" in files:
        code += ["", "# model.pt2: torch.export program, dynamic batch",
                 "logits = torch.export.load('model.pt2').module()(x)"]
    return ["## Use", "", "```python", *code, "```", ""]


def render(info: dict[str, Any]) -> str:
    """card.md for the facts in ``info`` (see the module docstring)."""
    model = info["model"]
    title = info.get("title") or f"{model.get('family', 'nasl')} network {model.get('arch_id', '')}"
    lines = [f"# {title}", ""]
    if info.get("summary"):
        lines += [info["summary"], ""]
    lines += _source(info)
    if info.get("choices"):
        lines += ["## Design choices", ""]
        lines += _table(["choice", "value"], [[f"`{k}`", _val(v)] for k, v in info["choices"].items()])
        lines.append("")
    lines += _costs(info) + _latency(info) + _accuracy(info) + _space(info) + _files(info)
    lines += _usage(info)
    if info.get("versions"):
        lines += ["## Versions", ""]
        lines += [", ".join(f"{k} {v}" for k, v in info["versions"].items()), ""]
    return "\n".join(lines)
