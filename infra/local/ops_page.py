"""The local platform's finance-ops page, `GET /ops`: the figures of `payplat report`, as
server-rendered HTML with inline SVG charts, read from the local platform's own ledger table.

Local only. The local gateway serves it before it looks at the route table, and it is not in
payplat/routes.py, so the deployed API can never route it (in AWS, finance ops look at the
CloudWatch dashboards payplat-finance-ops and payplat-platform-ops). No JavaScript, nothing
loaded from elsewhere (the CSP allows inline styles and nothing else), every interpolated
value escaped; each chart has a title, a description and its numbers as text.
"""

from __future__ import annotations

import html
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from payplat.config import Env
from payplat.ops import finance
from payplat.ops.finance import CurrencyFigures, FinanceReport

PATH = "/ops"
# The range selector: ?range=<key> -> (label, seconds).
RANGES: dict[str, tuple[str, int]] = {
    "24h": ("Last 24 hours", finance.DAY_S),
    "7d": ("Last 7 days", 7 * finance.DAY_S),
    "30d": ("Last 30 days", 30 * finance.DAY_S),
}
DEFAULT_RANGE = "24h"
HEADERS: list[tuple[str, str]] = [
    ("Content-Type", "text/html; charset=utf-8"),
    # Inline styles only: no script, no font, no request anywhere (img-src for data: URIs).
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:;"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    # Money figures: never kept by a cache; a reload shows the ledger as it is now.
    ("Cache-Control", "no-store"),
]

Reader = Callable[[int, int], list[dict[str, Any]]]  # (since, until) -> ledger records
Response = tuple[int, list[tuple[str, str]], bytes]


def respond(query: str, now: int | None = None, read: Reader | None = None) -> Response:
    """The page for a query string (`range=24h|7d|30d`)."""
    key = (parse_qs(query).get("range") or [DEFAULT_RANGE])[-1]
    if key not in RANGES:
        choices = ", ".join(RANGES)
        return _error(400, "Unknown range", f"The range is one of {choices}.")
    end = (int(time.time()) if now is None else now) + 1  # this second is in, as in the CLI
    window = finance.last(RANGES[key][1], end)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        records = (read or _read_ledger)(window.since, window.until)
    except (BotoCoreError, ClientError) as exc:
        return _error(503, "Ledger unavailable", f"The ledger table could not be read: {exc}")
    found = finance.report(records, window)
    return 200, HEADERS, render(found, key, end - 1).encode("utf-8")


_client_lock = threading.Lock()
_clients: list[Any] = []


def _read_ledger(since: int, until: int) -> list[dict[str, Any]]:
    """The local platform's ledger table (the runner's environment names it), through the
    dal like the CLI. One DynamoDB client, made under a lock: the gateway serves requests on
    many threads, and boto3's default session must not make clients on two at once."""
    from payplat.ops.dal.ledger_reports import money_records

    with _client_lock:
        if not _clients:
            import boto3

            _clients.append(boto3.client("dynamodb"))
    return money_records(os.environ[Env.LEDGER_TABLE], since, until, client=_clients[0])


# -- the page -----------------------------------------------------------------------------------

_STYLE = """
:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--text:#111827;--muted:#4b5563;
--line:#d1d5db;--accent:#1d4ed8}
@media (prefers-color-scheme:dark){:root{--bg:#111827;--card:#1f2937;--text:#f9fafb;
--muted:#d1d5db;--line:#374151;--accent:#93c5fd}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;background:var(--bg);color:var(--text);
font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header,main,footer{max-width:76rem;margin:0 auto}
h1{margin:.5rem 0;font-size:1.5rem}
h2{margin:0 0 .75rem;font-size:1.125rem}
section{margin:1rem 0;padding:1rem 1.25rem;background:var(--card);border:1px solid var(--line);
border-radius:.75rem;overflow-x:auto}
nav ul{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0;padding:0;list-style:none}
nav a{display:inline-block;padding:.25rem .75rem;border:1px solid var(--line);
border-radius:999px;color:var(--accent);text-decoration:none}
nav a[aria-current=page]{background:var(--accent);color:var(--card);border-color:var(--accent)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
table+table{margin-top:1.25rem}
th,td{padding:.3rem .75rem;border-bottom:1px solid var(--line);text-align:right;
white-space:nowrap}
th:first-child,td:first-child,td.text,th.text{text-align:left}
.muted{color:var(--muted);font-size:.875rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0}
svg{max-width:100%;height:auto}
svg text{fill:var(--text);font:12px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg text.heading{font-weight:bold;font-size:13px}svg text.small{font-size:10px}
svg .axis{stroke:var(--line);stroke-width:1}
svg .line{fill:none;stroke:var(--accent);stroke-width:2}
svg .dot{fill:var(--accent)}
.gross{fill:#1d4ed8}.captured{fill:#047857}.pending{fill:#b45309}.refunds{fill:#7c3aed}
.net{fill:#0e7490}.negative{fill:#b91c1c}.count{fill:#1d4ed8}
.s-succeeded{fill:#047857}.s-requires_capture{fill:#b45309}.s-canceled{fill:#6b7280}
.s-expired{fill:#a8a29e}.s-failed{fill:#b91c1c}
"""

_STATUS_LABELS = {
    "succeeded": "succeeded",
    "requires_capture": "awaiting capture",
    "canceled": "canceled",
    "expired": "expired",
    "failed": "failed",
}


def render(found: FinanceReport, range_key: str, generated_at: int) -> str:
    label = RANGES[range_key][0]
    window = found.window
    sections = [
        _figures_section(found),
        _value_section(found),
        _time_section(found),
        _outcomes_section(found),
        _partners_section(found),
    ]
    nav = "".join(
        f'<li><a href="{PATH}?range={key}"'
        + (' aria-current="page"' if key == range_key else "")
        + f">{_e(text)}</a></li>"
        for key, (text, _) in RANGES.items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>Finance ops · {_e(label)} · payplat (local)</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<header><h1>Finance ops</h1>"
        f"<p>Payments created from {_time(window.since)} to {_time(window.until)}"
        " (UTC, the end excluded), from the local platform's ledger. Amounts are never"
        " converted: each currency stands alone. Deployed, see the CloudWatch dashboards"
        " <code>payplat-finance-ops</code> and <code>payplat-platform-ops</code>.</p>"
        f'<nav aria-label="Time range"><ul>{nav}</ul></nav></header>'
        f"<main>{''.join(sections)}</main>"
        f'<footer class="muted">Generated {_time(generated_at)} UTC'
        f"{_skipped_note(found)}. The same figures: <code>payplat report --since"
        f" {_e(range_key)}</code>.</footer>"
        "</body></html>"
    )


def _skipped_note(found: FinanceReport) -> str:
    if not found.skipped:
        return ""
    return f"; {found.skipped} record(s) did not parse and are left out (payplat ledger verify)"


def _section(name: str, title: str, body: str, intro: str = "") -> str:
    lead = f'<p class="muted">{intro}</p>' if intro else ""
    return (
        f'<section id="{name}" aria-labelledby="{name}-h">'
        f'<h2 id="{name}-h">{_e(title)}</h2>{lead}{body}</section>'
    )


_NOTHING = "<p>No payments or refunds in this range.</p>"


_COUNTS = (
    ("payments", "Payments"),
    ("succeeded", "Succeeded"),
    ("pending", "Awaiting capture"),
    ("canceled", "Canceled"),
    ("expired", "Expired"),
    ("failed", "Failed"),
)


def _figures_section(found: FinanceReport) -> str:
    """Two tables, as `payplat report` prints them; every cell names its figure (data-field)
    and carries it unformatted (data-value, or data-minor for amounts)."""
    if not found.currencies:
        return _section("figures", "Figures by currency", _NOTHING)
    payments = _table(
        "payments-table",
        [*(text for _, text in _COUNTS), "Success rate", "Failure rate"],
        {
            f.currency: [_number(field, getattr(f, field)) for field, _ in _COUNTS]
            + [_text("success_rate", finance.format_rate(f.success_rate))]
            + [_text("failure_rate", finance.format_rate(f.failure_rate))]
            for f in found.currencies
        },
    )
    value = _table(
        "value-table",
        ["Gross value", "Captured", "Captures pending", "Refunds", "Refunded", "Net volume"],
        {
            f.currency: [
                _amount("gross", f.gross, f.currency),
                _amount("captured", f.captured, f.currency),
                _amount("pending_value", f.pending_value, f.currency),
                _number("refunds", f.refunds),
                _amount("refunded", f.refunded, f.currency),
                _amount("net", f.net, f.currency),
            ]
            for f in found.currencies
        },
    )
    intro = (
        "Success rate: succeeded and awaiting capture over every attempt. Gross value:"
        " captured plus captures pending. Net volume: captured minus refunded."
    )
    return _section("figures", "Figures by currency", payments + value, intro)


def _table(ident: str, headers: Sequence[str], rows: dict[str, list[str]]) -> str:
    head = "".join(f"<th scope=col>{_e(text)}</th>" for text in headers)
    body = "".join(
        f'<tr data-currency="{_e(code)}"><th scope=row>{_e(code)}</th>{"".join(cells)}</tr>'
        for code, cells in rows.items()
    )
    return (
        f'<table id="{ident}"><thead><tr><th scope=col>Currency</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _text(field: str, shown: str) -> str:
    return f'<td data-field="{field}">{_e(shown)}</td>'


def _number(field: str, value: int) -> str:
    return f'<td data-field="{field}" data-value="{value}">{value:,}</td>'


def _amount(field: str, minor: int, currency: str) -> str:
    shown = _e(finance.format_amount(minor, currency))
    return f'<td data-field="{field}" data-minor="{minor}">{shown}</td>'


# -- charts -------------------------------------------------------------------------------------


def _svg(chart: str, ident: str, size: tuple[int, int], *, title: str, desc: str, body: str) -> str:
    width, height = size
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" id="{ident}" data-chart="{chart}"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-labelledby="{ident}-t {ident}-d">'
        f'<title id="{ident}-t">{_e(title)}</title><desc id="{ident}-d">{_e(desc)}</desc>'
        f"{body}</svg></figure>"
    )


def _value_section(found: FinanceReport) -> str:
    if not found.currencies:
        return _section("value", "Value by currency", _NOTHING)
    charts = "".join(_value_chart(f) for f in found.currencies)
    intro = "Each currency on its own scale: amounts in different currencies do not compare."
    return _section("value", "Value by currency", f'<div class="charts">{charts}</div>', intro)


def _value_chart(f: CurrencyFigures) -> str:
    bars = [
        ("Gross value", f.gross, "gross", ""),
        ("Captured", f.captured, "captured", ""),
        ("Captures pending", f.pending_value, "pending", f" ({_plural(f.pending, 'payment')})"),
        ("Refunds", f.refunded, "refunds", f" ({_plural(f.refunds, 'refund')})"),
        ("Net volume", f.net, "net", ""),
    ]
    label_w, bar_w, row_h, top = 130, 180, 28, 30
    scale = max(abs(value) for _, value, _, _ in bars) or 1
    parts = [f'<text x="0" y="16" class="heading">{_e(f.currency)}</text>']
    said = []
    for row, (name, value, css, extra) in enumerate(bars):
        y = top + row * row_h
        width = round(bar_w * abs(value) / scale, 1)
        shown = finance.format_amount(value, f.currency) + extra
        said.append(f"{name.lower()} {shown}")
        kind = "negative" if value < 0 else css
        parts.append(
            f'<text x="0" y="{y + 13}">{_e(name)}</text>'
            f'<rect class="{kind}" x="{label_w}" y="{y}" width="{width}" height="18">'
            f"<title>{_e(name)}: {_e(shown)}</title></rect>"
            f'<text x="{label_w + width + 6}" y="{y + 13}">{_e(shown)}</text>'
        )
    desc = f"{f.currency}: " + ", ".join(said) + ". Bars on this currency's own scale."
    size = (label_w + bar_w + 150, top + len(bars) * row_h)
    title = f"Value in {f.currency}"
    return _svg("value", f"value-{f.currency}", size, title=title, desc=desc, body="".join(parts))


def _time_section(found: FinanceReport) -> str:
    window = found.window
    unit = "hour" if window.bucket_s == finance.HOUR_S else "day"
    counts = found.counts()
    total = sum(count for _, count in counts)
    busiest = max(counts, key=lambda pair: pair[1]) if counts else (window.since, 0)
    desc = (
        f"Payments per {unit}, every currency, from {finance.iso(window.since)} to"
        f" {finance.iso(window.until)}: {_plural(total, 'payment')}"
        + (
            f"; the busiest {unit} began {_moment(busiest[0], unit)} with {busiest[1]}."
            if total
            else "."
        )
    )
    points = [(start, count, f"{count:,}") for start, count in counts]
    title = f"Payments per {unit}"
    count_chart = _columns(
        "payments-over-time", "count-over-time", points, unit, title=title, desc=desc, width=1100
    )
    charts = []
    for f in found.currencies:
        series = [(p.start, p.value, finance.format_amount(p.value, f.currency)) for p in f.series]
        peak = max(f.series, key=lambda p: p.value) if f.series else None
        value_desc = (
            f"Gross value in {f.currency} per {unit}: "
            f"{finance.format_amount(sum(p.value for p in f.series), f.currency)} in all"
            + (
                f"; the largest {unit} began {_moment(peak.start, unit)} with"
                f" {finance.format_amount(peak.value, f.currency)}."
                if peak and peak.value
                else "."
            )
        )
        ident = f"value-over-time-{f.currency}"
        title = f"Gross value in {f.currency} per {unit}"
        charts.append(
            _columns(
                "value-over-time", ident, series, unit, title=title, desc=value_desc, css="gross"
            )
        )
    value_charts = f'<div class="charts">{"".join(charts)}</div>'
    return _section("over-time", "Payments over time", count_chart + value_charts)


def _columns(
    chart: str,
    ident: str,
    points: Sequence[tuple[int, int, str]],
    unit: str,
    *,
    title: str,
    desc: str,
    css: str = "count",
    width: int = 540,
) -> str:
    """A column per bucket (start, value, the value as text), each with its number on top
    where it fits; where they do not, the largest column's only."""
    height, left, top, plot_h = 220, 20, 40, 150
    plot_w = width - left * 2
    base = top + plot_h
    n = max(len(points), 1)
    step = plot_w / n
    high = max((value for _, value, _ in points), default=0)
    label_every = math.ceil(44 / step)  # a tick label is at most ~40 px wide
    fits = all(len(shown) * 6 <= step for _, value, shown in points if value)
    parts = [
        f'<text x="{left}" y="16" class="heading">{_e(title)}</text>',
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - left}" y2="{base}"/>',
    ]
    for index, (start, value, shown) in enumerate(points):
        x = left + index * step
        middle = f"{x + step / 2:.1f}"
        bar_h = round(plot_h * value / high, 1) if high else 0
        tip = f"{_moment(start, unit)}: {shown}"
        parts.append(
            f'<rect class="{css}" x="{x + step * 0.1:.1f}" y="{base - bar_h}"'
            f' width="{step * 0.8:.1f}" height="{bar_h}"><title>{_e(tip)}</title></rect>'
        )
        if value and (fits or value == high):
            anchor = "middle" if fits else ("end" if index > n / 2 else "start")
            parts.append(
                f'<text x="{middle}" y="{base - bar_h - 4}" text-anchor="{anchor}"'
                f' class="small">{_e(shown)}</text>'
            )
        if index % label_every == 0:
            tick = _e(_tick(start, unit))
            parts.append(f'<text x="{middle}" y="{base + 16}" text-anchor="middle">{tick}</text>')
    if not high:
        middle_y = top + plot_h / 2
        parts.append(f'<text x="{width / 2}" y="{middle_y}" text-anchor="middle">none</text>')
    body = "".join(parts)
    return _svg(chart, ident, (width, height), title=title, desc=desc, body=body)


def _outcomes_section(found: FinanceReport) -> str:
    if not found.currencies:
        return _section("outcomes", "Success vs failure", _NOTHING)
    label_w, bar_w, row_h, top = 90, 420, 34, 10
    parts = []
    said = []
    for row, f in enumerate(found.currencies):
        y = top + row * row_h
        parts.append(f'<text x="0" y="{y + 15}">{_e(f.currency)} ({f.payments:,})</text>')
        x = float(label_w)
        shares = []
        for status in finance.STATUSES:
            count = f.count(status)
            if not count:
                continue
            share = count / f.payments
            width = bar_w * share
            text = f"{_STATUS_LABELS[status]} {count:,} ({share * 100:.1f} %)"
            shares.append(text)
            parts.append(
                f'<rect class="s-{status}" x="{x:.1f}" y="{y}" width="{width:.1f}" height="20">'
                f"<title>{_e(f.currency)} {_e(text)}</title></rect>"
            )
            x += width
        rates = (
            f"success {finance.format_rate(f.success_rate)},"
            f" failure {finance.format_rate(f.failure_rate)}"
        )
        parts.append(f'<text x="{label_w + bar_w + 8}" y="{y + 15}">{_e(rates)}</text>')
        said.append(f"{f.currency}: {', '.join(shares) or 'no payments'}; {rates}")
    legend_y = top + len(found.currencies) * row_h + 6
    x = 0
    for status in finance.STATUSES:
        name = _STATUS_LABELS[status]
        parts.append(
            f'<rect class="s-{status}" x="{x}" y="{legend_y}" width="12" height="12"/>'
            f'<text x="{x + 16}" y="{legend_y + 11}">{_e(name)}</text>'
        )
        x += 24 + 7 * len(name)
    desc = "Outcome of every payment attempt, per currency. " + ". ".join(said) + "."
    size = (label_w + bar_w + 200, legend_y + 22)
    chart = _svg(
        "outcomes",
        "outcomes-chart",
        size,
        title="Success vs failure",
        desc=desc,
        body="".join(parts),
    )
    intro = (
        "Success: succeeded or awaiting capture; failure: refused (insufficient funds);"
        " canceled and expired authorizations are neither."
    )
    return _section("outcomes", "Success vs failure", chart, intro)


def _partners_section(found: FinanceReport) -> str:
    rows = [
        f'<tr data-currency="{_e(f.currency)}"><td class="text">{_e(f.currency)}</td>'
        f"<td>{rank}</td>"
        f'<td class="text" data-field="partner">{_e(p.owner)}</td>'
        f"{_amount('captured', p.captured, f.currency)}{_number('payments', p.payments)}</tr>"
        for f in found.currencies
        for rank, p in enumerate(f.top_partners, start=1)
    ]
    title = f"Top {found.top} partners by captured value"
    if not rows:
        return _section("partners", title, "<p>No captured payments in this range.</p>")
    table = (
        '<table id="partners-table"><thead><tr><th scope=col>Currency</th><th scope=col>Rank</th>'
        '<th scope=col class="text">Partner (payee)</th><th scope=col>Captured</th>'
        f"<th scope=col>Payments</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _section("partners", title, table)


# -- words --------------------------------------------------------------------------------------


def _error(status: int, title: str, message: str) -> Response:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)} · payplat (local)</title><style>{_STYLE}</style></head>"
        f"<body><main><section><h1>{_e(title)}</h1><p>{_e(message)}</p>"
        f'<p><a href="{PATH}">Finance ops, last 24 hours</a></p></section></main></body></html>'
    )
    return status, HEADERS, page.encode("utf-8")


def _time(epoch: int) -> str:
    text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f'<time datetime="{finance.iso(epoch)}">{text}</time>'


def _moment(start: int, unit: str) -> str:
    shape = "%Y-%m-%d %H:%M UTC" if unit == "hour" else "%Y-%m-%d"
    return datetime.fromtimestamp(start, UTC).strftime(shape)


def _tick(start: int, unit: str) -> str:
    return datetime.fromtimestamp(start, UTC).strftime("%H:%M" if unit == "hour" else "%d %b")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _e(value: str) -> str:
    return html.escape(value, quote=True)
