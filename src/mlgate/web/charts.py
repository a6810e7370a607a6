"""Small charts as inline SVG, drawn on the server: no chart library, no script, and readable
by screen readers (each chart has a title and a table of its numbers beside it in the page).

Pure functions from numbers to markup; the pages put them where they belong.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from markupsafe import Markup

BAR = "#2f6db5"
GRID = "#c9ced6"
TEXT = "#333"
MAX_BAR = 48.0


def bars(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 200,
) -> Markup:
    """A vertical bar per point (label, value), the largest value marked on the axis; every
    bar says its label and value when hovered."""
    e = html.escape
    left, bottom, top = 48, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((v for _, v in points), default=0.0) or 1.0
    n = max(len(points), 1)
    step = plot_w / n
    gap = min(4.0, step * 0.2)
    every = max(1, n // 8)  # at most ~8 labels on the x axis
    parts = [
        f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        f"role='img' aria-label='{e(title)}'><title>{e(title)}</title>",
        f"<line x1='{left}' y1='{top}' x2='{width - 8}' y2='{top}' stroke='{GRID}'/>",
        f"<line x1='{left}' y1='{top + plot_h}' x2='{width - 8}' y2='{top + plot_h}' "
        f"stroke='{GRID}'/>",
        f"<text x='{left - 6}' y='{top + 4}' text-anchor='end' font-size='11' fill='{TEXT}'>"
        f"{_short(peak)}</text>",
        f"<text x='{left - 6}' y='{top + plot_h}' text-anchor='end' font-size='11' "
        f"fill='{TEXT}'>0</text>",
    ]
    bar = min(max(step - gap, 1.0), MAX_BAR)
    for i, (label, value) in enumerate(points):
        h = 0.0 if value <= 0 else max(1.0, plot_h * value / peak)
        middle = left + i * step + step / 2
        y = top + plot_h - h
        parts.append(
            f"<rect x='{middle - bar / 2:.1f}' y='{y:.1f}' width='{bar:.1f}' height='{h:.1f}' "
            f"fill='{BAR}'><title>{e(label)}: {_full(value)} {e(unit)}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f"<text x='{middle:.1f}' y='{height - 8}' text-anchor='middle' "
                f"font-size='11' fill='{TEXT}'>{e(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def spark(values: Sequence[float], *, title: str, width: int = 120, height: int = 28) -> Markup:
    """A tiny bar chart for a table cell (e.g. a model's calls per day)."""
    e = html.escape
    peak = max(values, default=0.0) or 1.0
    n = max(len(values), 1)
    step = width / n
    parts = [
        f"<svg class='spark' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        f"role='img' aria-label='{e(title)}'><title>{e(title)}</title>",
        f"<line x1='0' y1='{height - 0.5}' x2='{width}' y2='{height - 0.5}' stroke='{GRID}'/>",
    ]
    for i, value in enumerate(values):
        h = 0.0 if value <= 0 else max(1.0, (height - 2) * value / peak)
        parts.append(
            f"<rect x='{i * step + 0.5:.1f}' y='{height - 1 - h:.1f}' "
            f"width='{max(step - 1, 0.5):.1f}' height='{h:.1f}' fill='{BAR}'/>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:g}"


def _full(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.3g}"


UP = "#c0392b"  # a contribution that raises the output
DOWN = "#2f6db5"  # one that lowers it


LABEL_CHARS = 40  # a waterfall's longest label shown whole
CHAR_PX = 7.2  # the widest a character of the 12 px sans-serif labels takes, about


def waterfall(
    base: float,
    steps: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
) -> Markup:
    """One row's explanation: from the base value, each column's contribution as a bar that
    starts where the last one ended (red up, blue down), to the row's value at the bottom.

    The labels (`column = value`) get the room the longest needs, up to LABEL_CHARS characters
    (longer ones end in "…" and say the whole in their bar's tooltip), and the numbers beside the
    bars the room the longest needs; `width` is the drawing's width with 150 px of labels and 70
    of numbers, the plot keeping its width whatever they take."""
    e = html.escape
    row_h, top = 22, 8
    plot_w = width - 150 - 70
    longest = max((len(label) for label, _ in steps), default=0)
    label_w = int(max(5, min(longest, LABEL_CHARS)) * CHAR_PX) + 12
    total = base + sum(v for _, v in steps)
    numbers = [f"{base:.4g} {unit}", f"{total:.4g} {unit}", *(f"{v:+.4g}" for _, v in steps)]
    right = int(max(len(n) for n in numbers) * CHAR_PX) + 10  # a bar at the right end, its number
    width = label_w + plot_w + right
    ends, at = [], base
    for _, value in steps:
        ends.append((at, at + value))
        at += value
    points = [base, total, *(x for pair in ends for x in pair)]
    low, high = min(points), max(points)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return label_w + plot_w * (value - low) / span

    height = top + row_h * (len(steps) + 2) + 8
    parts = [
        f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        f"role='img' aria-label='{e(title)}'><title>{e(title)}</title>",
    ]

    def row(i: int, label: str, start: float, end: float, fill: str, text: str) -> None:
        y = top + i * row_h
        left, right_x = sorted((x(start), x(end)))
        shown = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end' font-size='12' "
            f"fill='{TEXT}'>{e(shown)}</text>"
            f"<rect x='{left:.1f}' y='{y + 3}' width='{max(right_x - left, 1.5):.1f}' "
            f"height='{row_h - 6}' fill='{fill}'><title>{e(label)}: {e(text)}</title></rect>"
            f"<text x='{max(left, right_x) + 4:.1f}' y='{y + 15}' font-size='11' "
            f"fill='{TEXT}'>{e(text)}</text>"
        )

    row(0, "base", base, base, GRID, f"{base:.4g} {unit}".strip())
    for i, ((label, value), (start, end)) in enumerate(zip(steps, ends, strict=True), 1):
        row(i, label, start, end, UP if value >= 0 else DOWN, f"{value:+.4g}")
    row(len(steps) + 1, "value", total, total, TEXT, f"{total:.4g} {unit}".strip())
    parts.append(
        f"<line x1='{x(base):.1f}' y1='{top}' x2='{x(base):.1f}' y2='{height - 8}' "
        f"stroke='{GRID}' stroke-dasharray='3 3'/></svg>"
    )
    return Markup("".join(parts))


BAND = "#c6d7ee"


def interval_band(
    points: Sequence[tuple[float, float, float | None, float | None]],
    *,
    title: str,
    x_label: str,
    width: int = 640,
    height: int = 220,
) -> Markup:
    """An estimate over its x (a line) inside its interval (a band), with zero marked: points
    are (x, estimate, low, high); a point whose interval is still unbounded has None for both
    and is drawn without band. Each point says its numbers when hovered."""
    e = html.escape
    left, bottom, top, right = 56, 30, 12, 12
    plot_w, plot_h = width - left - right, height - bottom - top
    xs = [p[0] for p in points] or [0.0, 1.0]
    ys = [0.0, *(p[1] for p in points)]
    ys += [v for p in points for v in (p[2], p[3]) if v is not None]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    pad = (y_high - y_low) * 0.05 or 0.05
    y_low, y_high = y_low - pad, y_high + pad

    def x(value: float) -> float:
        return left + plot_w * ((value - x_low) / ((x_high - x_low) or 1.0))

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - y_low) / (y_high - y_low))

    parts = [
        f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        f"role='img' aria-label='{e(title)}'><title>{e(title)}</title>",
        f"<line x1='{left}' y1='{y(0):.1f}' x2='{width - right}' y2='{y(0):.1f}' "
        f"stroke='{TEXT}' stroke-dasharray='4 3'/>",
        f"<text x='{left - 6}' y='{y(0) + 4:.1f}' text-anchor='end' font-size='11' "
        f"fill='{TEXT}'>0</text>",
        f"<text x='{left - 6}' y='{top + 8}' text-anchor='end' font-size='11' "
        f"fill='{TEXT}'>{y_high:+.3g}</text>",
        f"<text x='{left - 6}' y='{top + plot_h}' text-anchor='end' font-size='11' "
        f"fill='{TEXT}'>{y_low:+.3g}</text>",
        f"<text x='{left + plot_w / 2:.1f}' y='{height - 8}' text-anchor='middle' "
        f"font-size='11' fill='{TEXT}'>{e(x_label)}: {_full(x_low)} to {_full(x_high)}</text>",
    ]
    bounded = [p for p in points if p[2] is not None and p[3] is not None]
    if len(bounded) > 1:
        upper = " ".join(f"{x(p[0]):.1f},{y(p[3]):.1f}" for p in bounded)  # type: ignore[arg-type]
        lower = " ".join(f"{x(p[0]):.1f},{y(p[2]):.1f}" for p in reversed(bounded))  # type: ignore[arg-type]
        parts.append(f"<polygon points='{upper} {lower}' fill='{BAND}' stroke='none'/>")
    if len(points) > 1:
        line = " ".join(f"{x(p[0]):.1f},{y(p[1]):.1f}" for p in points)
        parts.append(f"<polyline points='{line}' fill='none' stroke='{BAR}' stroke-width='2'/>")
    for px, estimate, low, high in points:
        around = "unbounded" if low is None or high is None else f"[{low:+.4g}, {high:+.4g}]"
        parts.append(
            f"<circle cx='{x(px):.1f}' cy='{y(estimate):.1f}' r='2.5' fill='{BAR}'>"
            f"<title>{e(x_label)} {_full(px)}: {estimate:+.4g} {around}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
