"""The webhook POST on real sockets (127.0.0.1): it goes to the address that was checked, not
wherever the name resolves now; TLS verifies the certificate for the URL's name (SNI); a
redirect is a failed attempt, not followed; a silent server is a timeout, bounded."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from payplat.webhooks.dal.webhook_http import HttpPoster
from payplat.webhooks.ssrf import Target

NAME = "hooks.partner.example"  # resolves nowhere: only the pinned address can be reached


class Recorded:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.location: str | None = None


def _server(recorded: Recorded, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            recorded.requests.append((self.path, dict(self.headers.items()), body))
            self.send_response(recorded.status)
            if recorded.location:
                self.send_header("Location", recorded.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def plain() -> Iterator[tuple[Recorded, int]]:
    recorded = Recorded()
    server = _server(recorded)
    yield recorded, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for NAME only."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls(certificate: tuple[Path, Path]) -> Iterator[tuple[Recorded, int, ssl.SSLContext]]:
    cert_path, key_path = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    recorded = Recorded()
    server = _server(recorded, server_context)
    trusting = ssl.create_default_context(cafile=str(cert_path))  # trusts this cert only
    yield recorded, server.server_address[1], trusting
    server.shutdown()
    server.server_close()


def _target(port: int, host: str = NAME, scheme: str = "http") -> Target:
    return Target(scheme=scheme, host=host, port=port, path="/hook?x=1", address="127.0.0.1")


HEADERS = {"Content-Type": "application/json", "Payplat-Event-Id": "evt_1"}


def test_the_post_goes_to_the_checked_address_as_the_urls_name(
    plain: tuple[Recorded, int],
) -> None:
    # Given a target whose name resolves nowhere, pinned to 127.0.0.1
    recorded, port = plain

    # When it is posted to
    result = HttpPoster(timeout_s=5).post(_target(port), b'{"id":"evt_1"}', HEADERS)

    # Then the pinned address got it, with the name in Host, the body and headers as given
    assert (result.delivered, result.result) == (True, "200")
    [(path, headers, body)] = recorded.requests
    assert path == "/hook?x=1"
    assert headers["Host"] == f"{NAME}:{port}"
    assert headers["Payplat-Event-Id"] == "evt_1"
    assert body == b'{"id":"evt_1"}'


def test_tls_is_verified_for_the_urls_name_not_the_address(
    tls: tuple[Recorded, int, ssl.SSLContext],
) -> None:
    recorded, port, trusting = tls
    poster = HttpPoster(timeout_s=5, context=trusting)

    # The certificate names NAME: a connection to 127.0.0.1 as NAME is verified
    assert poster.post(_target(port, scheme="https"), b"{}", HEADERS).delivered
    # As any other name it is refused before anything is sent
    other = poster.post(_target(port, host="other.example", scheme="https"), b"{}", HEADERS)
    assert (other.delivered, other.result) == (False, "tls_certificate_invalid")
    # And a certificate no trusted CA signed is refused (the default trust store)
    untrusted = HttpPoster(timeout_s=5).post(_target(port, scheme="https"), b"{}", HEADERS)
    assert (untrusted.delivered, untrusted.result) == (False, "tls_certificate_invalid")
    assert len(recorded.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    plain: tuple[Recorded, int], status: int
) -> None:
    recorded, port = plain
    recorded.status, recorded.location = status, "http://169.254.169.254/latest/meta-data/"
    result = HttpPoster(timeout_s=5).post(_target(port), b"{}", HEADERS)
    assert (result.delivered, result.result) == (False, str(status))
    assert len(recorded.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_any_other_status_is_a_failed_attempt(plain: tuple[Recorded, int], status: int) -> None:
    recorded, port = plain
    recorded.status = status
    assert HttpPoster(timeout_s=5).post(_target(port), b"{}", HEADERS).result == str(status)


def test_a_silent_server_is_a_timeout_within_the_bound() -> None:
    # Given a server that accepts and never answers
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        started = time.monotonic()
        result = HttpPoster(timeout_s=1).post(_target(listener.getsockname()[1]), b"{}", HEADERS)
        assert (result.delivered, result.result) == (False, "timeout")
        assert time.monotonic() - started < 3
    finally:
        listener.close()


def test_a_closed_port_is_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = HttpPoster(timeout_s=2).post(_target(port), b"{}", HEADERS)
    assert (result.delivered, result.result) == (False, "connection_refused")
