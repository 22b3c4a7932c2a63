"""Plan vs paid by month as an inline SVG drawn on the server (no script, prints as it shows)."""

from __future__ import annotations

from html import escape

from services.gateway.console.web import uah

MONTHS = ("січ", "лют", "бер", "кві", "тра", "чер", "лип", "сер", "вер", "жов", "лис", "гру")


def plan_vs_paid(months: list[tuple[str, int, int]], plan_label: str, paid_label: str,
                 chart_id: str = "plan-paid-chart") -> str:
    """``months``: (YYYY-MM, plan kop, paid kop) for each month shown (any two series: the what-if page
    draws baseline vs scenario with it)."""
    width, height, left, bottom, top = 820, 280, 96, 30, 24
    peak = max([1, *(max(p, q) for _, p, q in months)])
    slot = (width - left - 10) / max(1, len(months))
    bar = max(3.0, slot * 0.35)
    plot = height - bottom - top
    parts = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(plan_label)} / {escape(paid_label)}" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):  # grid with amounts
        y = top + plot * i / 4
        amount = peak * (4 - i) // 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ec"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#5b6478">'
                     f'{escape(uah(amount - amount % 100).replace(",00", ""))}</text>')
    for n, (period, plan, paid) in enumerate(months):
        x = left + n * slot + slot * 0.12
        for k, (value, colour, label) in enumerate(((plan, "#9db7d9", plan_label), (paid, "#0b57a4", paid_label))):
            h = plot * value / peak
            parts.append(f'<rect x="{x + k * bar:.1f}" y="{top + plot - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{escape(period)} {escape(label)}: {escape(uah(value))}</title></rect>')
        month = int(period[5:7]) - 1 if period[5:7].isdigit() else 0
        parts.append(f'<text x="{x + bar:.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{MONTHS[month]}</text>')
    parts.append(f'<rect x="{width - 190}" y="4" width="10" height="10" fill="#9db7d9"/>'
                 f'<text x="{width - 176}" y="13" font-size="11">{escape(plan_label)}</text>'
                 f'<rect x="{width - 100}" y="4" width="10" height="10" fill="#0b57a4"/>'
                 f'<text x="{width - 86}" y="13" font-size="11">{escape(paid_label)}</text></svg>')
    return "".join(parts)
