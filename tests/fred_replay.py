"""A REPLAY SERVER for FRED, not the FRED service: a local HTTP server on 127.0.0.1 that answers
FRED's documented endpoints (`fred/series/observations`, `fred/series`) with the real observations of
the sample CSVs in ../shared/data/fred (and their frequency from its metadata.csv). It checks the
api_key parameter as FRED does, and can be told to fail a number of requests first. Used by the
`cbi fetch fred` tests and the daemon's `--fetch fred` test.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

KEY = "replay-key-0123456789abcdef0123456789ab"  # a key as FRED issues them: 32 lower-case alphanumerics


class Replay(ThreadingHTTPServer):
    def __init__(self, fred: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fred = fred
        self.fail_next = 0  # answer this many requests with HTTP 500 first
        self.requests: list[str] = []
        with (fred / "metadata.csv").open(newline="") as fh:
            self.freq = {r["series_id"]: r["freq"] for r in csv.DictReader(fh)}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        srv: Replay = self.server  # type: ignore[assignment]
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        srv.requests.append(url.path)
        if srv.fail_next:
            srv.fail_next -= 1
            return self._send(500, {"error_code": 500, "error_message": "Internal Server Error (replayed)"})
        if q.get("api_key") != KEY:
            return self._send(400, {"error_code": 400, "error_message": "Bad Request.  The value for variable api_key is not registered."})
        sid = q.get("series_id", "")
        path = srv.fred / f"{sid}.csv"
        if not path.is_file():
            return self._send(400, {"error_code": 400, "error_message": "Bad Request.  The series does not exist."})
        if url.path == "/fred/series":
            return self._send(200, {"seriess": [{"id": sid, "frequency_short": srv.freq.get(sid, "")}]})
        with path.open(newline="") as fh:
            obs = [{"date": r["date"], "value": r["value"] if r["value"].strip() else "."} for r in csv.DictReader(fh)]
        return self._send(200, {"count": len(obs), "observations": obs})


@contextmanager
def serving(fred: Path) -> Iterator[Replay]:
    srv = Replay(fred)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
