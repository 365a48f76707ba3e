"""What stands between the read API and its callers: a token, a rate limit per client, size caps, errors without
internals, and an access log without personal data.

The API serves personal data (a customer's recommendations and messages), so:

- **Token.** With ``AIGC_API_TOKEN`` set, every endpoint but ``/health`` wants ``Authorization: Bearer <token>``
  (compared in constant time; 401 otherwise). Without it the API serves loopback only: ``python -m api.app``
  refuses a non-loopback ``--host`` and says why (:func:`check_bind`).
- **Rate limit.** A token bucket per client (a valid token's hash, else the peer address):
  ``AIGC_API_RATE`` requests a second, bursts of ``AIGC_API_BURST``; beyond it 429 with ``Retry-After``.
- **Sizes.** A request line over :data:`MAX_URL_BYTES` is refused (414), a request body (the API reads none)
  over :data:`MAX_BODY_BYTES` too (413), and a response over ``AIGC_API_MAX_RESPONSE_BYTES`` is replaced by a
  413 that says to narrow the query.
- **Errors.** An unexpected exception answers 500 with a request id and nothing else; the trace goes to the
  server's log under that id.
- **Access log** (logger ``aigc.api.access``): method, the route's template (``/recommendations/{customer_id}``,
  never the id itself), status, milliseconds, request id and a salted hash of the client; no query string.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field

ACCESS_LOG = logging.getLogger("aigc.api.access")
ERROR_LOG = logging.getLogger("aigc.api.error")
PUBLIC_PATHS = frozenset({"/health"})
MAX_URL_BYTES = 2048
MAX_BODY_BYTES = 1024


@dataclass(frozen=True)
class SecuritySettings:
    """The API's protections, from the environment (:meth:`from_env`)."""

    token: str | None = None
    rate_per_second: float = 50.0
    burst: int = 100
    max_response_bytes: int = 8 * 1024 * 1024

    @classmethod
    def from_env(cls) -> SecuritySettings:
        return cls(
            token=os.environ.get("AIGC_API_TOKEN") or None,
            rate_per_second=float(os.environ.get("AIGC_API_RATE", cls.rate_per_second)),
            burst=int(os.environ.get("AIGC_API_BURST", cls.burst)),
            max_response_bytes=int(os.environ.get("AIGC_API_MAX_RESPONSE_BYTES", cls.max_response_bytes)),
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: SecuritySettings) -> None:
    """Refuse to serve personal data beyond this machine without a token."""
    if not is_loopback(host) and not settings.token:
        raise SystemExit(
            f"refusing to listen on {host!r} without a token: the API serves personal data. Set AIGC_API_TOKEN "
            "(callers send 'Authorization: Bearer <token>') or bind to 127.0.0.1"
        )


@dataclass
class RateLimiter:
    """Token buckets per client key: ``rate`` tokens a second up to ``burst``; thread-safe."""

    rate: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may pass, else the seconds until it would."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            passes = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if passes else tokens, now)
            # Forget idle clients (their buckets have refilled) so the table stays bounded.
            if len(self._buckets) > 100_000:
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return 0.0 if passes else (1.0 - tokens) / self.rate


def _json_response(status: int, body: dict, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


class Guard:
    """ASGI middleware applying :class:`SecuritySettings` to every HTTP request (see the module docstring)."""

    def __init__(self, app, settings: SecuritySettings | None = None):
        self.app = app
        self.settings = settings or SecuritySettings.from_env()
        self.limiter = RateLimiter(self.settings.rate_per_second, self.settings.burst)
        self._salt = secrets.token_bytes(
            16
        )  # per process: log lines can be grouped by client, not traced back

    def _client_key(self, scope, auth: str) -> str:
        """A valid token's hash (one caller, wherever it connects from), else the peer address (so that a flood
        of made-up tokens shares one bucket)."""
        if self._authorised(auth) and self.settings.token:
            return "t:" + hashlib.sha256(auth.encode()).hexdigest()[:16]
        client = scope.get("client") or ("?", 0)
        return "a:" + str(client[0])

    def _authorised(self, auth: str) -> bool:
        token = self.settings.token
        if not token:
            return True
        sent = auth[7:] if auth.lower().startswith("bearer ") else ""
        return hmac.compare_digest(sent.encode(), token.encode())

    def _refusal(self, scope, auth: str, url_bytes: int, body_bytes: int):
        """The response refusing this request before it reaches a route, or None."""
        if url_bytes > MAX_URL_BYTES:
            return _json_response(414, {"detail": f"request line over {MAX_URL_BYTES} bytes"})
        if body_bytes > MAX_BODY_BYTES:
            return _json_response(413, {"detail": f"request body over {MAX_BODY_BYTES} bytes"})
        wait = self.limiter.take(self._client_key(scope, auth))
        if wait > 0:
            return _json_response(
                429,
                {"detail": f"rate limit of {self.settings.rate_per_second:g} requests/s exceeded"},
                {"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        if scope["path"] not in PUBLIC_PATHS and not self._authorised(auth):
            return _json_response(
                401,
                {"detail": "missing or wrong token: send 'Authorization: Bearer <token>'"},
                {"WWW-Authenticate": "Bearer"},
            )
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:12]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        try:
            body_bytes = int(headers.get("content-length", "0") or 0)
        except ValueError:
            body_bytes = MAX_BODY_BYTES + 1
        status = {"code": 500, "sent": False}

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        refusal = self._refusal(scope, auth, url_bytes, body_bytes)
        try:
            if refusal is not None:
                await refusal(scope, receive, send_wrapped)
            else:
                await self._capped(scope, receive, send_wrapped, request_id)
        except Exception:
            ERROR_LOG.exception("request %s failed", request_id)
            if not status["sent"]:
                await _json_response(500, {"detail": "internal error", "request_id": request_id})(
                    scope, receive, send_wrapped
                )
        finally:
            route = scope.get("route")
            ACCESS_LOG.info(
                json.dumps(
                    {
                        "method": scope.get("method"),
                        "route": getattr(route, "path", None) or "(unmatched)",
                        "status": status["code"],
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                        "request_id": request_id,
                        "client": hmac.new(
                            self._salt, self._client_key(scope, auth).encode(), "sha256"
                        ).hexdigest()[:10],
                    }
                )
            )

    async def _capped(self, scope, receive, send, request_id: str):
        """Run the app, buffering its response so that one over the cap is replaced by a 413."""
        start, chunks, size = None, [], 0
        limit = self.settings.max_response_bytes

        async def buffer(message):
            nonlocal start, size
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])

        await self.app(scope, receive, buffer)
        if size > limit:
            await _json_response(
                413,
                {
                    "detail": f"response of {size} bytes is over the {limit}-byte cap: narrow the query "
                    "(a smaller limit, or filters)",
                    "request_id": request_id,
                },
            )(scope, receive, send)
            return
        await send(start)
        await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": False})
