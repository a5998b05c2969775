"""The local /ops page end to end: payments made through the real API, the page loaded in
headless Chromium (the DOM it renders and a screenshot), and its figures checked against
`payplat report --json` for the same range. Plus the page over plain HTTP: its headers, and
that the route table the deployed API is built from never names it."""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from payplat.ops import finance
from payplat.routes import ROUTES
from tests.conftest import Platform, payplat_cli
from tests.e2e.test_money_api import local_aws, tenant
from tests.unit.test_ops_page import CSP, Page

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_TIMEOUT_S = 90
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server",
)  # fmt: skip
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Made:
    """The payments this module made, in currencies no other test pays in."""

    merchant: str


@pytest.fixture(scope="module")
def made(platform: Platform) -> Made:
    aws = local_aws(platform)
    plan = aws.roomy_plan()
    payer, merchant = tenant(platform, aws, plan, "ops_payer"), tenant(platform, aws, plan, "ops")
    source = {
        currency: aws.open_account(payer.owner, currency, opening)
        for currency, opening in (("JPY", 100_000), ("KWD", 50_000), ("EUR", 100_000))
    }
    to = {currency: aws.open_account(merchant.owner, currency, 0) for currency in source}
    payer.pay(source["JPY"], to["JPY"], 1_500, currency="JPY")
    payer.pay(source["JPY"], to["JPY"], 2_000, currency="JPY", capture_method="manual")
    payer.pay(source["KWD"], to["KWD"], 1_234, currency="KWD")
    refused = payer.post(
        "/v1/payments",
        {
            "source_account": source["KWD"],
            "destination_account": to["KWD"],
            "amount": 999_999,  # 999.999 KWD: more than the payer holds
            "currency": "KWD",
        },
    )
    assert refused.status_code == 402, refused.text
    paid = payer.pay(source["EUR"], to["EUR"], 12_345)
    refund = merchant.post(f"/v1/payments/{paid['id']}/refunds", {"amount": 345})
    assert refund.status_code == 201, refund.text
    return Made(merchant.owner)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    return CHROMIUM


def browse(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603
        [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def report(platform: Platform, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(payplat_cli(platform, "report", *args, "--json"))
    return document


def test_the_page_in_chromium_shows_the_figures_of_payplat_report(
    platform: Platform, made: Made, chromium: Path, tmp_path: Path
) -> None:
    # Given payments in JPY, KWD and EUR made through the API in the last minutes
    # When the page for the last 24 hours is rendered by Chromium, and the report run
    url = f"{platform.base_url}/ops?range=24h"
    dom = browse(chromium, tmp_path / "profile", "--dump-dom", url).stdout
    expected = report(platform, "--since", "24h")
    page = Page(dom)

    # Then it shows the SVG charts, each titled and described
    kinds = {chart.kind for chart in page.charts}
    assert {"value", "payments-over-time", "value-over-time", "outcomes"} <= kinds
    assert all(chart.title and chart.desc for chart in page.charts)
    assert page.title.startswith("Finance ops")

    # And every currency's figures are the report's, as raw minor units and as money
    shown = {figures["currency"] for figures in expected["currencies"]}
    assert set(page.cells) == shown >= {"EUR", "JPY", "KWD"}
    for figures in expected["currencies"]:
        code = figures["currency"]
        assert page.raw(code, "payments") == figures["payments"]["count"], code
        assert page.raw(code, "failed") == figures["payments"]["failed"], code
        assert page.raw(code, "gross") == figures["value"], code
        assert page.raw(code, "captured") == figures["captured"], code
        assert page.raw(code, "pending_value") == figures["captures_pending"]["value"], code
        assert page.raw(code, "refunded") == figures["refunds"]["value"], code
        assert page.raw(code, "net") == figures["net_volume"], code
        assert page.figure(code, "gross") == finance.format_amount(figures["value"], code)
        assert page.figure(code, "success_rate") == finance.format_rate(figures["success_rate"])
    assert page.partners == [
        (figures["currency"], partner["partner"], partner["captured"])
        for figures in expected["currencies"]
        for partner in figures["top_partners"]
    ]

    # And the currencies only this module pays in show exactly what it paid
    assert (page.raw("JPY", "payments"), page.raw("JPY", "gross")) == (2, 3_500)
    assert page.figure("JPY", "gross") == "3,500 JPY"
    assert page.figure("JPY", "pending_value") == "2,000 JPY"
    assert (page.raw("KWD", "payments"), page.raw("KWD", "failed")) == (2, 1)
    assert page.figure("KWD", "gross") == "1.234 KWD"
    assert page.figure("KWD", "failure_rate") == "50.0 %"
    assert ("KWD", made.merchant, 1_234) in page.partners
    assert "1.234 KWD" in page.chart("value-KWD").texts


def test_the_screenshot_is_a_real_picture_of_the_page(
    platform: Platform, made: Made, chromium: Path, tmp_path: Path
) -> None:
    # When Chromium takes a screenshot of the 7-day page
    picture = tmp_path / "ops.png"
    url = f"{platform.base_url}/ops?range=7d"
    args = (f"--screenshot={picture}", "--window-size=1280,2000", url)
    browse(chromium, tmp_path / "profile", *args)

    # Then it is a PNG of the window's size, with content (not one blank colour)
    data = picture.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 20_000
    assert len(set(png_pixels(data))) > 16


def png_pixels(data: bytes) -> bytes:
    """The image's filtered scanlines (every IDAT chunk, inflated): enough to tell a drawn
    page from a blank one without an imaging library."""
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return zlib.decompress(b"".join(chunks))


def test_ops_answers_html_with_a_strict_policy_and_is_never_routed_when_deployed(
    platform: Platform,
) -> None:
    # When /ops is asked for over HTTP
    response = requests.get(f"{platform.base_url}/ops", timeout=30)

    # Then it is an HTML page that may load and run nothing
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"].startswith(CSP)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "<svg" in response.text
    assert "<script" not in response.text
    # And an unknown range is refused with the ranges there are
    wrong = requests.get(f"{platform.base_url}/ops?range=1y", timeout=30)
    assert wrong.status_code == 400
    assert "24h, 7d, 30d" in wrong.text
    # And the route table, which the deployed API and its authorizer are built from, has no
    # /ops: only the local gateway serves it
    assert "/ops" not in {route.path for route in ROUTES}
    assert requests.post(f"{platform.base_url}/ops", timeout=30).status_code == 404
