"""The local gateway: HTTP in, API Gateway REST proxy events (v1) out, to the function
handlers running in this process — with the REQUEST authorizer run and cached as API Gateway
runs it (missing identity source or "Unauthorized" -> 401, Deny -> 403, Allow -> context
passed on; the cached policy is evaluated against every route it is reused for)."""

from __future__ import annotations

import base64
import importlib
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra.local import ops_page
from infra.resources import (
    EDGE_MAX_AUTHORIZATION_BYTES,
    EDGE_MAX_BODY_BYTES,
    GATEWAY_RESPONSES_BY_TYPE,
    WAF_BODY_TOO_LARGE,
    WAF_HEADER_TOO_LARGE,
    WafResponse,
)
from payplat.gateway.policy import Policy, is_allowed
from payplat.routes import Function, Route, find_route

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
API_ID = "local"
STAGE = "local"
AUTHORIZER = "authorizer"
MAX_BODY_BYTES = 1024 * 1024


@dataclass
class LambdaContext:
    """What a handler reads of its Lambda context."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    deadline_ms: float = 0.0

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:payplat-{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/payplat-{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))


class LocalFunction:
    """One function's handler, imported on first use. A Lambda execution environment serves
    one request at a time, and the handlers' module state assumes it, so calls serialize."""

    def __init__(self, name: str, timeout_s: int = 10) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            if self._module is None:
                self._module = importlib.import_module(f"functions.{self.name}.handler")
            context = LambdaContext(
                function_name=self.name,
                aws_request_id=str(uuid.uuid4()),
                deadline_ms=time.time() * 1000 + self.timeout_s * 1000,
            )
            return self._module.lambda_handler(event, context)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


Invoke = Callable[[dict[str, Any]], Any]


class LocalGateway:
    """`functions` and `authorizer` default to the real handlers under functions/."""

    def __init__(
        self,
        cache_ttl_s: int = 300,
        clock: Callable[[], float] = time.monotonic,
        functions: Mapping[str, Invoke] | None = None,
        authorizer: Invoke | None = None,
    ) -> None:
        self.cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._functions = functions or {f.value: LocalFunction(f.value).invoke for f in Function}
        self._authorizer = authorizer or LocalFunction(AUTHORIZER, timeout_s=5).invoke
        self._cache: dict[str, tuple[float, Policy]] = {}
        self._cache_lock = threading.Lock()
        self.authorizer_calls = 0

    def handle(
        self,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> HttpResponse:
        request_id = str(uuid.uuid4())
        refused = _edge_check(headers, body)  # what the WAF in front of the stage refuses
        if refused is not None:
            return HttpResponse(
                refused.status,
                [("Content-Type", "application/json"), *refused.headers.items()],
                refused.body.encode("utf-8"),
            )
        split = urlsplit(raw_path)
        if method == "GET" and split.path == ops_page.PATH:  # local only: not in the route table
            return HttpResponse(*ops_page.respond(split.query))
        match = find_route(method, split.path)
        if match is None:
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        route, path_params = match
        event = _proxy_event(route, method, split.path, split.query, headers, body, path_params)
        event["requestContext"].update(
            requestId=request_id, identity=_identity(source_ip, event["headers"])
        )
        if route.protected:
            decision = self._authorize(event, route)
            if isinstance(decision, HttpResponse):
                return decision
            event["requestContext"]["authorizer"] = decision
        try:
            result = self._functions[route.function.value](event)
        except Exception:  # a crashed function is a 502, as in API Gateway
            traceback.print_exc()  # and, as Lambda would log it, its traceback on the console
            return self._gateway_response("DEFAULT_5XX", request_id)
        return _http_response(result, request_id)

    def _authorize(self, event: dict[str, Any], route: Route) -> dict[str, Any] | HttpResponse:
        request_id = event["requestContext"]["requestId"]
        identity = _header(event["headers"], "authorization")
        if not identity:  # API Gateway rejects before calling the authorizer
            return self._gateway_response("UNAUTHORIZED", request_id)
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{STAGE}/{route.arn_path}"
        policy = self._cached(identity)
        if policy is None:
            authorizer_event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")},
            }
            self.authorizer_calls += 1
            try:
                policy = self._authorizer(authorizer_event)
            except Exception as exc:
                if str(exc) == "Unauthorized":
                    return self._gateway_response("UNAUTHORIZED", request_id)
                return self._gateway_response("DEFAULT_5XX", request_id, status=500)
            self._store(identity, policy)
        if not is_allowed(policy, method_arn):
            return self._gateway_response("ACCESS_DENIED", request_id)
        return {**policy.get("context", {}), "principalId": policy["principalId"]}

    def _cached(self, identity: str) -> Policy | None:
        if self.cache_ttl_s <= 0:
            return None
        with self._cache_lock:
            hit = self._cache.get(identity)
            if hit is None or hit[0] <= self._clock():
                self._cache.pop(identity, None)
                return None
            return hit[1]

    def _store(self, identity: str, policy: Policy) -> None:
        if self.cache_ttl_s > 0:
            with self._cache_lock:
                self._cache[identity] = (self._clock() + self.cache_ttl_s, policy)

    def _gateway_response(
        self, response_type: str, request_id: str, status: int = 502
    ) -> HttpResponse:
        """API Gateway's own answer; `status` where the response type keeps the original
        (a failed integration is a 502, a failed authorizer a 500)."""
        spec = GATEWAY_RESPONSES_BY_TYPE[response_type]
        body = spec.body.replace("$context.requestId", request_id).encode("utf-8")
        headers = [*spec.headers.items(), ("x-amzn-RequestId", request_id)]
        return HttpResponse(spec.status or status, headers, body)


def _edge_check(headers: list[tuple[str, str]], body: bytes) -> WafResponse | None:
    if len(body) > EDGE_MAX_BODY_BYTES:
        return WAF_BODY_TOO_LARGE
    authorization = sum(len(v) for k, v in headers if k.lower() == "authorization")
    if authorization > EDGE_MAX_AUTHORIZATION_BYTES:
        return WAF_HEADER_TOO_LARGE
    return None


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _identity(source_ip: str, headers: dict[str, str]) -> dict[str, Any]:
    return {"sourceIp": source_ip, "userAgent": _header(headers, "user-agent")}


def _proxy_event(  # noqa: PLR0917 - mirrors the parts of an HTTP request one to one
    route: Route,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    path_params: dict[str, str],
) -> dict[str, Any]:
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        multi_query.setdefault(name, []).append(value)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    now = datetime.now(UTC)
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": (
            {name: values[-1] for name, values in multi_query.items()} or None
        ),
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "stage": STAGE,
            "resourceId": route.name,
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "protocol": "HTTP/1.1",
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": _header(dict(headers), "host") or "127.0.0.1",
        },
        "body": (text if body else None),
        "isBase64Encoded": is_base64,
    }


def _http_response(result: Any, request_id: str) -> HttpResponse:
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return HttpResponse(502, [("Content-Type", "application/json")], b'{"message": null}')
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((name, str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name not in (result.get("headers") or {}):
            headers.extend((name, str(value)) for value in values)
    headers.append(("x-amzn-RequestId", request_id))
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
    return HttpResponse(result["statusCode"], headers, body)


_DIGITS = re.compile(r"[0-9]{1,12}")


def _content_length(values: list[str]) -> int | None:
    """The body's length from its Content-Length headers (0 without one); None if they are
    not one string of digits (RFC 9112 §6.3: repeated values must agree)."""
    if not values:
        return 0
    length = values[0].strip()
    if len(set(values)) != 1 or not _DIGITS.fullmatch(length):
        return None
    return int(length)


def serve(gateway: LocalGateway, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "payplat-local"
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def _dispatch(self) -> None:
            length = _content_length(self.headers.get_all("Content-Length") or [])
            if length is None or self.headers.get("Transfer-Encoding"):
                # Framing we cannot trust (a negative, non-numeric or conflicting length; a
                # chunked body, which API Gateway's REST proxy does not take either): answer
                # at once and close, rather than read a body that may never end.
                self.close_connection = True
                self.send_error(400, "Bad Request", "Malformed Content-Length")
                return
            if length > MAX_BODY_BYTES:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else b""
            response = gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            return  # the functions log each request themselves

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the listen backlog: bursts of new connections queue

    server = Server((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
    return server
