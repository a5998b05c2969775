"""Webhook POSTs, pinned to the address payplat.webhooks.ssrf checked.

The connection goes to `Target.address` — the name is not resolved again, so a DNS answer
that changed since the check (rebinding) cannot move the request — while the request carries
`Host: <name>` and TLS sends the name as SNI and verifies the certificate for it. Redirects
are not followed (a 3xx is a failed attempt), and one attempt takes at most `timeout_s`
from connecting to the last byte read, however slowly the other end answers.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping

from payplat.webhooks.objects import DELIVERY_TIMEOUT_S, PostResult
from payplat.webhooks.ssrf import Target

MAX_RESPONSE_BYTES = 64 * 1024  # read (and dropped) so the connection ends cleanly


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # SNI and certificate verification are for the name in the URL, not the address.
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class HttpPoster:
    def __init__(
        self, timeout_s: float = DELIVERY_TIMEOUT_S, context: ssl.SSLContext | None = None
    ) -> None:
        self._timeout_s = timeout_s
        self._context = context or ssl.create_default_context()

    def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> PostResult:
        started = time.monotonic()
        connection: http.client.HTTPConnection = (
            _PinnedHTTPSConnection(target, self._timeout_s, self._context)
            if target.scheme == "https"
            else _PinnedHTTPConnection(target, self._timeout_s)
        )
        # The socket timeout bounds each read; this bounds the whole attempt.
        watchdog = threading.Timer(self._timeout_s, _abort, args=(connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request(
                "POST", target.path, body=body, headers={**headers, "Connection": "close"}
            )
            response = connection.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            status = response.status
            result = PostResult(200 <= status < 300, str(status), _ms(started))
        except TimeoutError:
            result = PostResult(False, "timeout", _ms(started))
        except ssl.SSLCertVerificationError:
            result = PostResult(False, "tls_certificate_invalid", _ms(started))
        except ssl.SSLError:
            result = PostResult(False, "tls_error", _ms(started))
        except ConnectionRefusedError:
            result = PostResult(False, "connection_refused", _ms(started))
        except (OSError, http.client.HTTPException):
            expired = time.monotonic() - started >= self._timeout_s
            result = PostResult(False, "timeout" if expired else "connection_error", _ms(started))
        finally:
            watchdog.cancel()
            connection.close()
        return result


def _abort(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # closed already: nothing to stop
            sock.shutdown(socket.SHUT_RDWR)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
