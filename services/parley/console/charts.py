"""Charts drawn on the server as inline SVG: no script and no library in the browser, so the console works
offline and every figure is in the page the moment it loads. Every label is escaped."""

from __future__ import annotations

from html import escape

# Colour-blind-safe palette (Okabe–Ito), cycled for series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def stacked_columns(
    labels: list[str], counts: dict[str, list[int]], title: str, width: int = 640, height: int = 200
) -> str:
    """One column per time bucket, stacked by series, with a legend."""
    if not labels or not counts:
        return f'<p class="empty">No messages yet for {escape(title)}.</p>'
    left, bottom, top = 36, 36, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(series[i] for series in counts.values()) for i in range(len(labels))]
    peak = max(max(totals), 1)
    step = plot_w / len(labels)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height + 18 * ((len(counts) + 3) // 4)}" '
        f'aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
        f'<text x="{left - 6}" y="{top + 8}" class="tick" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" class="tick" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x, y = left + i * step + step * 0.15, float(top + plot_h)
        for n, (name, series) in enumerate(counts.items()):
            h = plot_h * series[i] / peak
            if h <= 0:
                continue
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{colour(n)}"><title>{escape(name)}: {series[i]} ({escape(label)})</title></rect>'
            )
        if i % max(1, len(labels) // 4) == 0:
            parts.append(
                f'<text x="{left + i * step:.1f}" y="{top + plot_h + 14}" class="tick">{escape(label)}</text>'
            )
    for n, name in enumerate(counts):
        lx, ly = left + (n % 4) * (plot_w / 4), height + 18 * (n // 4)
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{colour(n)}"/>')
        parts.append(f'<text x="{lx + 14:.1f}" y="{ly}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(rows: list[tuple[str, float, str]], title: str, width: int = 420) -> str:
    """One bar per (label, value, shown value) row, scaled to the largest value."""
    if not rows:
        return f'<p class="empty">Nothing yet for {escape(title)}.</p>'
    label_w, row_h = 150, 22
    peak = max((v for _, v, _ in rows), default=0) or 1
    height = row_h * len(rows) + 4
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
    ]
    for i, (label, value, shown) in enumerate(rows):
        y = 2 + i * row_h
        w = (width - label_w - 60) * value / peak
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" class="legend" text-anchor="end">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
            f'fill="{colour(i)}"/>'
        )
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" class="tick">{escape(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)
