"""A small HTTP proxy in front of the BigQuery emulator: records every request, and can answer
chosen requests itself with BigQuery's real error shape (to show how the sync reacts to rate
limits the emulator never produces). Everything else is forwarded unchanged.

Loopback only; used by tests, never by the product.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

RATE_LIMIT_MESSAGE = (
    "Exceeded rate limits: too many api requests per user per method for this user_method. "
    "For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas"
)


def rate_limit_body() -> dict:
    """BigQuery's 403 rateLimitExceeded response body, as the REST API sends it."""
    return {
        "error": {
            "code": 403,
            "message": RATE_LIMIT_MESSAGE,
            "errors": [{"message": RATE_LIMIT_MESSAGE, "domain": "usageLimits", "reason": "rateLimitExceeded"}],
            "status": "PERMISSION_DENIED",
        }
    }


@dataclass
class Seen:
    method: str
    path: str
    body: bytes
    status: int
    injected: bool
    response: bytes = b""

    def json(self) -> dict:
        return _json(self.body)

    def response_json(self) -> dict:
        return _json(self.response)


def _json(raw: bytes) -> dict:
    try:
        out = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


@dataclass
class Injection:
    """Answer the first `times` requests matching method and path pattern with (status, body)."""

    method: str
    path: str  # a regular expression over the request path
    status: int
    body: dict
    times: int
    used: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.used < self.times and method == self.method and re.search(self.path, path) is not None


@dataclass
class Proxy:
    upstream: str
    seen: list[Seen] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, method: str, path: str, status: int, body: dict, times: int = 1) -> Injection:
        inj = Injection(method, path, status, body, times)
        self.injections.append(inj)
        return inj

    def _pick(self, method: str, path: str) -> Injection | None:
        with self._lock:
            for inj in self.injections:
                if inj.matches(method, path):
                    inj.used += 1
                    return inj
        return None

    def start(self) -> Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                return None

            def _send(self, status: int, headers: list[tuple[str, str]], content: bytes) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def handle_one(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                inj = proxy._pick(self.command, self.path)
                if inj is not None:
                    content = json.dumps(inj.body).encode()
                    proxy.seen.append(Seen(self.command, self.path, body, inj.status, True, content))
                    self._send(inj.status, [("Content-Type", "application/json; charset=UTF-8")], content)
                    return
                skip = {"host", "content-length", "accept-encoding", "connection"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                r = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, allow_redirects=False, timeout=300
                )
                proxy.seen.append(Seen(self.command, self.path, body, r.status_code, False, r.content))
                drop = {"transfer-encoding", "content-encoding", "content-length", "connection"}
                self._send(r.status_code, [(k, v) for k, v in r.headers.items() if k.lower() not in drop], r.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_where(self, pred: Callable[[Seen], bool]) -> list[Seen]:
        return [s for s in list(self.seen) if pred(s)]


JOBS_INSERT = r"^/bigquery/v2/projects/[^/]+/jobs(\?|$)"
