"""The report's chart as inline SVG: a stacked histogram of alert scores by outcome, the threshold marked.

Written out by hand (a few rectangles, lines and labels) so the van needs no plotting library: the page stays
one self-contained file, the chart scales with the page, and its text is searchable. Every bar carries its
outcome, bin and count as data attributes, which is also how the tests read the chart back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

BINS = 20
"""Bins of width 0.05 over the score range 0..1."""
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 50, 185, 15, 45  # margins in SVG units: axes left and below, the legend right


def bin_counts(scores: Sequence[float]) -> list[int]:
    """How many scores fall in each of the BINS equal bins over 0..1 (a score of exactly 1 in the last)."""
    counts = [0] * BINS
    for score in scores:
        counts[min(max(int(score * BINS), 0), BINS - 1)] += 1
    return counts


def _label(outcome: str) -> str:
    return outcome.replace("_", " ")


def score_histogram_svg(scores_by_outcome: Mapping[str, Sequence[float]], threshold: float) -> str:
    """An `<svg>` element: alert scores (0..1) stacked by outcome in BINS bins, the threshold dashed."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    counts = {o: bin_counts(s) for o, s in scores_by_outcome.items()}
    totals = [sum(c[i] for c in counts.values()) for i in range(BINS)]
    top = max(max(totals, default=0), 1)
    step = max(1, -(-top // 5))  # about five y ticks, whole alerts
    y_max = step * -(-top // step)
    bar_w = plot_w / BINS

    def x(score: float) -> float:
        return LEFT + score * plot_w

    def y(count: float) -> float:
        return TOP + plot_h - count * plot_h / y_max

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img" aria-label="histogram of alert scores by outcome" '
             'font-family="sans-serif" font-size="11">',
             "<title>Alert scores by outcome; dashed line: the threshold</title>"]
    base = [0] * BINS
    for colour, (outcome, per_bin) in zip(COLOURS * 2, counts.items(), strict=False):
        for i, n in enumerate(per_bin):
            if n:
                parts.append(f'<rect class="bar" data-outcome={quoteattr(outcome)} data-bin="{i}" '
                             f'data-count="{n}" x="{x(i / BINS) + 0.5:.1f}" y="{y(base[i] + n):.1f}" '
                             f'width="{bar_w - 1:.1f}" height="{y(base[i]) - y(base[i] + n):.1f}" '
                             f'fill="{colour}"/>')
                base[i] += n
    axis_y = TOP + plot_h
    parts.append(f'<path d="M{LEFT} {TOP}V{axis_y}H{LEFT + plot_w}" fill="none" stroke="black"/>')
    for tick in range(0, 11, 2):
        tx = x(tick / 10)
        parts.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" stroke="black"/>'
                     f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle">{tick / 10:.1f}</text>')
    for count in range(0, y_max + 1, step):
        ty = y(count)
        parts.append(f'<line x1="{LEFT - 4}" y1="{ty:.1f}" x2="{LEFT}" y2="{ty:.1f}" stroke="black"/>'
                     f'<text x="{LEFT - 7}" y="{ty + 4:.1f}" text-anchor="end">{count}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                 "alert score (0..1)</text>")
    parts.append(f'<text transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
                 'text-anchor="middle">alerts</text>')
    tx = x(min(max(threshold, 0.0), 1.0))
    parts.append(f'<line class="threshold" data-threshold="{threshold}" x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" '
                 f'y2="{axis_y}" stroke="black" stroke-dasharray="5 3"/>')
    legend = [(_label(o), c, "") for o, c in zip(counts, COLOURS * 2, strict=False)]
    legend.append(("threshold", "black", ' stroke-dasharray="5 3"'))
    lx = LEFT + plot_w + 15
    for row, (text, colour, dash) in enumerate(legend):
        ly = TOP + 10 + row * 18
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="{colour}" stroke-width="'
                     f'{2 if dash else 8}"{dash}/><text x="{lx + 24}" y="{ly + 4}">{escape(text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
