"""Which webhook URLs payplat may call: every class of internal address is refused, whatever
form it is written in or resolved from, and the delivery is pinned to the address checked."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from payplat.webhooks.ssrf import UrlNotAllowed, address_refusal, check_url

PUBLIC = "93.184.215.14"


def resolving_to(*addresses: str) -> object:
    def resolver(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolver


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "private"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fd00:ec2::254", "metadata"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("2001:db8::1", "private"),  # documentation
        ("::ffff:10.0.0.1", "IPv6 form of a private"),
        ("::ffff:127.0.0.1", "IPv6 form of a loopback"),
        ("::ffff:169.254.169.254", "IPv6 form of a cloud metadata"),
        ("2002:a00:1::1", "IPv6 form of a private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "IPv6 form of a cloud metadata"),  # NAT64 of 169.254.169.254
        ("not-an-address", "not an IP address"),
    ],
)
def test_every_internal_address_class_is_refused(address: str, reason: str) -> None:
    refusal = address_refusal(address)
    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize(
    "address", [PUBLIC, "8.8.8.8", "100.63.255.255", "100.128.0.1", "2606:4700::1111"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_only_in_local_mode(address: str) -> None:
    assert address_refusal(address) is not None
    assert address_refusal(address, local=True) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "10.0.0.1"])
def test_local_mode_still_refuses_metadata_and_private_addresses(address: str) -> None:
    assert address_refusal(address, local=True) is not None


def test_a_public_https_url_is_pinned_to_the_address_it_resolved_to() -> None:
    # When a URL whose name resolves to a public address is checked
    target = check_url(
        "https://hooks.partner.example:8443/payplat?v=1", resolver=resolving_to(PUBLIC)
    )

    # Then the delivery connects to that address, as that name
    assert target.address == PUBLIC
    assert (target.scheme, target.host, target.port) == ("https", "hooks.partner.example", 8443)
    assert target.path == "/payplat?v=1"
    assert target.host_header == "hooks.partner.example:8443"


def test_a_name_that_resolves_to_loopback_is_refused_unless_local() -> None:
    # Given a name whose DNS answer is 127.0.0.1 (the classic rebinding target)
    resolver = resolving_to("127.0.0.1")

    # Then it is refused when deployed, and allowed locally
    with pytest.raises(UrlNotAllowed, match="loopback"):
        check_url("https://rebind.attacker.example/hook", resolver=resolver)
    assert check_url("https://rebind.example/hook", local=True, resolver=resolver).address == (
        "127.0.0.1"
    )


def test_one_internal_address_among_public_ones_refuses_the_url() -> None:
    with pytest.raises(UrlNotAllowed, match="private"):
        check_url("https://mixed.example/", resolver=resolving_to(PUBLIC, "10.0.0.7"))


@pytest.mark.parametrize(
    ("url", "local", "message"),
    [
        ("http://hooks.partner.example/", False, "https"),
        ("http://hooks.partner.example/", True, "https"),  # locally, http to loopback only
        ("ftp://hooks.partner.example/", False, "https"),
        ("file:///etc/passwd", False, "https"),
        ("https://user:pass@hooks.partner.example/", False, "credentials"),
        ("https:///path-only", False, "no host"),
        ("https://hooks.partner.example:99999/", False, "port"),
        ("https://hooks.partner.example/a b", False, "whitespace"),
        ("https://hooks.partner.example\\@10.0.0.1/", False, "backslash"),
        ("", False, "characters"),
        ("https://x.example/" + "a" * 2100, False, "characters"),
    ],
)
def test_malformed_or_plaintext_urls_are_refused(url: str, local: bool, message: str) -> None:
    with pytest.raises(UrlNotAllowed, match=message):
        check_url(url, local=local, resolver=resolving_to(PUBLIC))


def test_http_to_loopback_is_allowed_locally() -> None:
    target = check_url("http://127.0.0.1:8765/hook", local=True)
    assert (target.scheme, target.address, target.port) == ("http", "127.0.0.1", 8765)
    assert target.host_header == "127.0.0.1:8765"


def test_an_unresolvable_name_is_refused() -> None:
    with pytest.raises(UrlNotAllowed, match="does not resolve"):
        check_url("https://nowhere.invalid/", resolver=resolving_to())


def test_ip_literals_are_checked_like_names() -> None:
    # The real resolver, with literals only: no DNS needed
    with pytest.raises(UrlNotAllowed, match="private"):
        check_url("https://10.0.0.1/hook")
    with pytest.raises(UrlNotAllowed, match="metadata"):
        check_url("https://[fd00:ec2::254]/latest")
    with pytest.raises(UrlNotAllowed, match="loopback"):
        check_url("https://2130706433/hook")  # 127.0.0.1 written as one number
    target = check_url("https://[2606:4700::1111]/hook")
    assert target.host_header == "[2606:4700::1111]"
