"""Server-side SVG charts for the delivery dashboard: no script, no CDN.

Each function returns SVG markup (a SafeString) built from numbers and from
labels that are escaped here, so the page can include it as it is and the
live endpoint can send it for the page to swap in.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
GREY = "#999"
# Up to this many time buckets the timeline draws bars, beyond it lines.
BARS_UP_TO = 20
COLOURS = {
    "submitted": "#4a7fb5",
    "queued": "#5b9bd5",
    "delivered": "#2e8b57",
    "read": "#1f5f99",
    "failed": "#c0392b",
    "clicked": "#8e44ad",
    "clicks": "#8e44ad",
}


def _fmt(n: int) -> str:
    return f"{n:,}"


def _pct(n: int, of: int) -> str:
    if not of:
        return "-"
    value = 100 * n / of
    return f"{value:.0f} %" if value >= 10 or value == 0 else f"{value:.1f} %"


def _svg(width: int, height: int, label: str, body: list[str]) -> SafeString:
    text = escape(label)
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;{FONT}" role="img" '
        f'aria-label="{text}"><title>{text}</title>{"".join(body)}</svg>'
    )


@dataclass(frozen=True)
class Step:
    key: str  # for the colour and the element id
    label: str
    count: int
    help: str = ""


def funnel(steps: Sequence[Step]) -> SafeString:
    """Horizontal bars, each as wide as its share of the first step."""
    width, row, left, bar_w = 790, 46, 170, 400
    height = row * len(steps) + 8
    first = steps[0].count if steps else 0
    body = []
    for i, step in enumerate(steps):
        y = 4 + i * row
        share = step.count / first if first else 0
        w = max(bar_w * share, 2 if step.count else 0)
        x = left + (bar_w - w) / 2
        colour = COLOURS.get(step.key, GREY)
        body.append(
            f'<g class="funnel-step" id="funnel-{escape(step.key)}" '
            f'data-count="{step.count}">'
            f'<text x="{left - 12}" y="{y + 20}" text-anchor="end" font-size="14" '
            f'font-weight="600" fill="#333">{escape(step.label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{bar_w}" height="28" rx="3" '
            f'fill="#eee"/>'
            f'<rect class="funnel-bar" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" '
            f'height="28" rx="3" fill="{colour}"/>'
            f'<text x="{left + bar_w + 12}" y="{y + 18}" font-size="14" fill="#333">'
            f'<tspan font-weight="600">{_fmt(step.count)}</tspan>'
            f'<tspan dx="6" fill="#666">{_pct(step.count, first)}</tspan></text>'
        )
        if step.help:
            body.append(
                f'<text x="{left + bar_w + 12}" y="{y + 34}" font-size="11" '
                f'fill="#777">{escape(step.help)}</text>'
            )
        body.append("</g>")
    return _svg(width, height, "Delivery funnel", body)


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: Sequence[int]


def timeline(
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str,
    *,
    counted: str = "receipts",
    empty: str = "No delivery receipts yet",
    title: str = "Receipts over time",
) -> SafeString:
    """Lines of receipts (or what `counted` names) per time bucket, with
    axes and a legend.

    `labels` names each bucket (e.g. "14:05"); `unit` says what a bucket is
    ("per minute", "per 5 minutes"); `empty` is said when there is nothing.
    """
    width, height = 760, 260
    left, right, top, bottom = 56, 16, 34, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    body = []
    # Legend.
    x = left
    for s in series:
        colour = COLOURS.get(s.key, GREY)
        body.append(
            f'<rect x="{x}" y="8" width="14" height="14" rx="2" fill="{colour}"/>'
            f'<text x="{x + 20}" y="20" font-size="13" fill="#333">'
            f"{escape(s.label)} ({_fmt(sum(s.values))})</text>"
        )
        x += 30 + 9 * (len(s.label) + len(_fmt(sum(s.values))) + 3)
    body.append(
        f'<text x="{width - right}" y="20" font-size="12" fill="#777" '
        f'text-anchor="end">{escape(counted)} {escape(unit)}</text>'
    )
    n = len(labels)
    peak = max((v for s in series for v in s.values), default=0)
    # Axes.
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}" stroke="#bbb"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#bbb"/>'
    )
    if not n or not peak:
        body.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" font-size="15" '
            f'fill="#777" text-anchor="middle" class="timeline-empty">'
            f"{escape(empty)}</text>"
        )
        return _svg(width, height, f"{title}: none yet", body)
    scale = _nice(peak)
    for frac in (0, 0.5, 1):
        y = top + plot_h - plot_h * frac
        value = round(scale * frac)
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" fill="#666" '
            f'text-anchor="end">{_fmt(value)}</text>'
        )
        if frac:
            body.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                f'stroke="#eee"/>'
            )

    def px(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def py(v: int) -> float:
        return top + plot_h - plot_h * v / scale

    for i in sorted({0, n // 2, n - 1}):
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 else "middle"
        if n == 1:
            anchor = "middle"
        body.append(
            f'<text x="{px(i):.1f}" y="{height - 12}" font-size="11" fill="#666" '
            f'text-anchor="{anchor}">{escape(labels[i])}</text>'
        )
    if n <= BARS_UP_TO:
        # Few buckets: grouped bars read better than lines through few dots.
        slot = plot_w / n
        bar = min(28.0, slot * 0.8 / max(1, len(series)))
        for i in range(n):
            x0 = left + slot * i + (slot - bar * len(series)) / 2
            for j, s in enumerate(series):
                v = s.values[i]
                h = plot_h * v / scale
                body.append(
                    f'<rect class="timeline-{escape(s.key)}" data-value="{v}" '
                    f'x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" '
                    f'width="{bar - 1:.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS.get(s.key, GREY)}"><title>{escape(labels[i])}: '
                    f"{_fmt(v)} {escape(s.label.lower())}</title></rect>"
                )
        return _svg(width, height, title, body)
    for s in series:
        colour = COLOURS.get(s.key, GREY)
        points = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(s.values))
        body.append(
            f'<polyline class="timeline-{escape(s.key)}" fill="none" '
            f'stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
    return _svg(width, height, title, body)


def _nice(peak: int) -> int:
    """A round axis maximum at or above `peak`."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= peak:
                return step * m
        step *= 10
