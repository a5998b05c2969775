"""The local /ops page (`infra.local.ops_page`) and its one route in the local gateway: the
figures of `payplat report` as HTML and inline SVG, strict headers, nothing loaded or run,
every value escaped, and only ever served locally."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local import ops_page
from infra.local.gateway import LocalGateway
from payplat.ops import finance
from payplat.routes import ROUTES

NOW = 1_700_092_799  # 2023-11-15T23:59:59Z
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:"
FIGURE_TABLES = ("payments-table", "value-table")


# -- reading the page (the e2e test reads Chromium's DOM with these too) --------------------------


@dataclass
class Chart:
    kind: str
    ident: str
    labelled_by: str
    title: str = ""
    desc: str = ""
    texts: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """What a reader of /ops gets: the figures table cells by currency and field (shown text
    and raw attributes), the charts with their title, description and text labels, links."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.cells: dict[str, dict[str, tuple[str, dict[str, str]]]] = {}
        self.charts: list[Chart] = []
        self.links: dict[str, dict[str, str]] = {}
        self.partners: list[tuple[str, str, int]] = []  # currency, payee, captured
        self.tags: set[str] = set()
        self._table = ""
        self._row: str | None = None
        self._cell: tuple[str, dict[str, str]] | None = None
        self._text: list[str] = []
        self._in: list[str] = []
        self._chart: Chart | None = None
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self.tags.add(tag)
        self._in.append(tag)
        self._text = []
        if tag == "table":
            self._table = found.get("id", "")
        elif tag == "tr" and "data-currency" in found:
            self._row = found["data-currency"]
        elif tag == "td" and self._row is not None and "data-field" in found:
            self._cell = (found["data-field"], found)
        elif tag == "svg":
            self._chart = Chart(
                found.get("data-chart", ""), found.get("id", ""), found.get("aria-labelledby", "")
            )
            self.charts.append(self._chart)
        elif tag == "a":
            self.links[found.get("href", "")] = found

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._text).split())
        if tag == "title" and self._chart is None:
            self.title = text
        elif tag in ("title", "desc") and self._chart is not None and self._in[-2:-1] == ["svg"]:
            setattr(self._chart, tag, text)
        elif tag == "text" and self._chart is not None:
            self._chart.texts.append(text)
        elif tag == "td" and self._cell is not None and self._row is not None:
            name, attrs = self._cell
            if self._table in FIGURE_TABLES:
                self.cells.setdefault(self._row, {})[name] = (text, attrs)
            elif self._table == "partners-table" and name == "partner":
                self.partners.append((self._row, text, 0))
            elif self._table == "partners-table" and name == "captured":
                code, payee, _ = self.partners[-1]
                self.partners[-1] = (code, payee, int(attrs["data-minor"]))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "svg":
            self._chart = None
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def figure(self, currency: str, name: str) -> str:
        return self.cells[currency][name][0]

    def raw(self, currency: str, name: str) -> int:
        attrs = self.cells[currency][name][1]
        return int(attrs.get("data-minor", attrs.get("data-value", "")))

    def chart(self, ident: str) -> Chart:
        [found] = [c for c in self.charts if c.ident == ident]
        return found


def payment(
    status: str, amount: int, currency: str = "EUR", payee: str = "usr_bob", created: int = NOW
) -> dict[str, Any]:
    return {
        "pk": f"PAYMENT#pay_{amount}",
        "sk": "PAYMENT",
        "status": status,
        "amount": Decimal(amount),
        "amount_captured": Decimal(amount if status == "succeeded" else 0),
        "currency": currency,
        "payee": payee,
        "created": Decimal(created),
    }


RECORDS = [
    payment("succeeded", 123_450),
    payment("requires_capture", 5_000),
    payment("failed", 99, created=NOW - 5 * 3_600),
    payment("succeeded", 1_500, currency="JPY", payee="usr_shop"),
    payment("succeeded", 1_234, currency="KWD"),
    {"pk": "PAYMENT#pay_1", "sk": "REFUND#x", "amount": 450, "currency": "EUR", "created": NOW},
]


class Reader:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.asked: list[tuple[int, int]] = []

    def __call__(self, since: int, until: int) -> list[dict[str, Any]]:
        self.asked.append((since, until))
        return self.records


def header(headers: list[tuple[str, str]], name: str) -> str:
    return next(value for key, value in headers if key.lower() == name.lower())


# -- the page -----------------------------------------------------------------------------------


def test_the_page_shows_the_figures_of_payplat_report_for_the_range() -> None:
    # Given a ledger with payments in three currencies
    reader = Reader(RECORDS)

    # When the page for the last 24 hours is asked for
    status, _, body = ops_page.respond("range=24h", now=NOW, read=reader)

    # Then it reads that range (this second included), as `payplat report --since 24h` does
    assert status == 200
    end = NOW + 1
    assert reader.asked == [(end - 86_400, end)]
    expected = finance.document(finance.report(RECORDS, finance.last(86_400, end)))
    # And every figure of the report is on it, raw and as a finance person reads it
    page = Page(body.decode())
    for figures in expected["currencies"]:
        code = figures["currency"]
        assert page.raw(code, "payments") == figures["payments"]["count"]
        assert page.raw(code, "gross") == figures["value"]
        assert page.raw(code, "pending_value") == figures["captures_pending"]["value"]
        assert page.raw(code, "refunds") == figures["refunds"]["count"]
        assert page.raw(code, "refunded") == figures["refunds"]["value"]
        assert page.raw(code, "net") == figures["net_volume"]
        assert page.figure(code, "gross") == finance.format_amount(figures["value"], code)
    assert page.partners == [
        (figures["currency"], partner["partner"], partner["captured"])
        for figures in expected["currencies"]
        for partner in figures["top_partners"]
    ]
    assert page.figure("EUR", "gross") == "1,284.50 EUR"
    assert page.figure("JPY", "gross") == "1,500 JPY"
    assert page.figure("KWD", "gross") == "1.234 KWD"
    assert page.figure("EUR", "success_rate") == "66.7 %"
    assert page.figure("EUR", "failure_rate") == "33.3 %"
    assert page.title.startswith("Finance ops · Last 24 hours")


def test_every_chart_is_inline_svg_with_a_title_a_description_and_its_numbers() -> None:
    # When the page is rendered
    _, _, body = ops_page.respond("", now=NOW, read=Reader(RECORDS))
    page = Page(body.decode())

    # Then it has the charts finance ops asked for, each described for a screen reader
    kinds = {chart.kind for chart in page.charts}
    assert kinds == {"value", "payments-over-time", "value-over-time", "outcomes"}
    for chart in page.charts:
        assert chart.title, chart
        assert chart.desc, chart
        assert chart.labelled_by == f"{chart.ident}-t {chart.ident}-d"
    # And the numbers are there as text, not only as shapes
    value = page.chart("value-EUR")
    assert "1,284.50 EUR" in value.texts
    assert "net volume 1,230.00 EUR" in value.desc
    outcomes = page.chart("outcomes-chart")
    assert "EUR: succeeded 1 (33.3 %), awaiting capture 1 (33.3 %), failed 1 (33.3 %)" in (
        outcomes.desc
    )
    over_time = page.chart("count-over-time")
    assert "5 payments" in over_time.desc
    assert len([c for c in page.charts if c.kind == "value-over-time"]) == 3


def test_the_range_selector_links_every_range_and_marks_the_current_one() -> None:
    # When the 7-day page is asked for
    reader = Reader(RECORDS)
    _, _, body = ops_page.respond("range=7d", now=NOW, read=reader)
    page = Page(body.decode())

    # Then it read 7 days, charted per day, and links the others
    assert reader.asked == [(NOW + 1 - 7 * 86_400, NOW + 1)]
    assert set(page.links) >= {"/ops?range=24h", "/ops?range=7d", "/ops?range=30d"}
    assert page.links["/ops?range=7d"].get("aria-current") == "page"
    assert "aria-current" not in page.links["/ops?range=24h"]
    assert "Payments per day" in page.chart("count-over-time").title


def test_headers_are_strict_and_nothing_is_loaded_or_run() -> None:
    status, headers, body = ops_page.respond("", now=NOW, read=Reader(RECORDS))
    page = Page(body.decode())

    assert status == 200
    assert header(headers, "Content-Type") == "text/html; charset=utf-8"
    assert header(headers, "Content-Security-Policy").startswith(CSP)
    assert "frame-ancestors 'none'" in header(headers, "Content-Security-Policy")
    assert header(headers, "X-Content-Type-Options") == "nosniff"
    assert header(headers, "Cache-Control") == "no-store"
    assert not page.tags & {"script", "link", "img", "iframe", "object", "form"}
    text = body.decode()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text


def test_values_from_the_ledger_cannot_become_markup() -> None:
    # Given a payee id that is markup
    hostile = '<script>alert(1)</script>"><b>'
    _, _, body = ops_page.respond(
        "", now=NOW, read=Reader([payment("succeeded", 100, payee=hostile)])
    )

    # Then it is shown as text
    assert hostile not in body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;b&gt;" in body.decode()
    assert "script" not in Page(body.decode()).tags


def test_an_empty_ledger_says_so() -> None:
    _, _, body = ops_page.respond("range=30d", now=NOW, read=Reader([]))
    assert "No payments or refunds in this range." in body.decode()


def test_an_unknown_range_is_a_400_page_naming_the_ranges() -> None:
    reader = Reader(RECORDS)
    status, headers, body = ops_page.respond("range=1y", now=NOW, read=reader)

    assert status == 400
    assert header(headers, "Content-Security-Policy").startswith(CSP)
    assert "24h, 7d, 30d" in body.decode()
    assert reader.asked == []


def test_an_unreadable_ledger_is_a_503_page() -> None:
    def unreadable(since: int, until: int) -> list[dict[str, Any]]:
        raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "Scan")

    status, _, body = ops_page.respond("", now=NOW, read=unreadable)
    assert status == 503
    assert "ledger table could not be read" in body.decode()


# -- the route: local only ----------------------------------------------------------------------


def test_the_local_gateway_serves_get_ops_and_the_route_table_never_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the local gateway (its functions never called) and a ledger
    reader = Reader(RECORDS)
    monkeypatch.setattr(ops_page, "_read_ledger", reader)

    def no_function(event: dict[str, Any]) -> Any:
        raise AssertionError(f"a function was called for {event['path']}")

    gateway = LocalGateway(functions={"oauth": no_function, "payments": no_function})

    # When /ops is asked for with GET, then the gateway answers it itself
    response = gateway.handle("GET", "/ops?range=7d", [], b"", "127.0.0.1")
    assert response.status == 200
    assert header(response.headers, "Content-Security-Policy").startswith(CSP)
    assert len(reader.asked) == 1

    # And any other method is what API Gateway answers for a path it does not know
    refused = gateway.handle("POST", "/ops", [], b"", "127.0.0.1")
    unknown = gateway.handle("POST", "/nowhere", [], b"", "127.0.0.1")
    assert (refused.status, header(refused.headers, "Content-Type")) == (
        unknown.status,
        header(unknown.headers, "Content-Type"),
    )
    assert refused.status == 404
    # And the route table (which the deployed API is built from) never names it
    assert not [route for route in ROUTES if route.path.rstrip("/") == "/ops"]
