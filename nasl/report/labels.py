"""Label placement without overlap (a small "repel"), shared by pareto.png and report.html.

In: anchor points and label sizes in pixels (y up). Out: an offset per label, from its
anchor to the middle of the label's left edge, such that no two label boxes overlap and no
label covers another anchor, when the tried positions allow it. Pure Python, no plotting.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def short_names(names: Sequence[str]) -> tuple[str, list[str]]:
    """(common prefix, names without it): ``shufflenet_0.5x_g3`` → ``0.5x_g3`` when every name
    starts with ``shufflenet_``. The prefix is cut at its last ``_``, ``-`` or space."""
    if len(names) < 2:
        return "", list(names)
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    cut = max(first.rfind(c, 0, n) for c in "_- ") + 1
    if cut <= 0 or any(len(s) <= cut for s in names):
        return "", list(names)
    return first[:cut], [s[cut:] for s in names]


def _overlaps(a: Box, b: Box, pad: float) -> bool:
    return a[0] < b[2] + pad and b[0] < a[2] + pad and a[1] < b[3] + pad and b[1] < a[3] + pad


def repel(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]], *,
          gap: float = 8.0, pad: float = 2.0, marker: float = 6.0, tries: int = 40,
          bounds: Box | None = None, obstacles: Sequence[Box] = ()) -> list[tuple[float, float]]:
    """Offsets ``(dx, dy)`` in pixels from each anchor to its label's left-middle point.

    Labels are placed one by one (by x, then y), each at the first free spot among: right of
    its anchor, left of it, then the same shifted up and down in steps of its height. A spot
    is free when the label's box, grown by ``pad``, meets no placed label, no anchor (a square
    of ``marker`` pixels), none of the ``obstacles`` (other markers, a legend) and stays inside
    ``bounds`` (when given). When no spot of ``tries``
    steps is free, the last one tried is used.
    """
    anchor_boxes = [(x - marker, y - marker, x + marker, y + marker) for x, y in anchors]
    placed: list[Box] = []
    out: list[tuple[float, float]] = [(gap, 0.0)] * len(anchors)
    for i in sorted(range(len(anchors)), key=lambda j: (anchors[j][0], anchors[j][1])):
        (x, y), (w, h) = anchors[i], sizes[i]
        best: tuple[float, float] | None = None
        for step in range(tries):
            dy = (step + 1) // 2 * (h + pad) * (1 if step % 2 else -1) if step else 0.0
            for dx in (gap, -gap - w):
                box = (x + dx, y + dy - h / 2, x + dx + w, y + dy + h / 2)
                if bounds is not None and not (bounds[0] <= box[0] and box[2] <= bounds[2]
                                               and bounds[1] <= box[1] and box[3] <= bounds[3]):
                    continue
                others = [b for k, b in enumerate(anchor_boxes) if k != i]
                if any(_overlaps(box, b, pad) for b in (*placed, *others, *obstacles)):
                    continue
                best = (dx, dy)
                break
            if best is not None:
                break
        if best is None:  # nothing free: the right side at the farthest step tried
            best = (gap, dy)
        out[i] = best
        dx, dy = best
        placed.append((x + dx, y + dy - h / 2, x + dx + w, y + dy + h / 2))
    return out
