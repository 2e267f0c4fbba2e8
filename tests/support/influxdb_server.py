"""A real InfluxDB 1.x server and an InfluxDB-v2-API proxy in front of it, for tests and benchmarks.

Only InfluxDB 1.6 (Debian's ``influxdb`` package) can be installed on the development machines,
while the product writes with ``influxdb-client``, a v2 client that posts to
``/api/v2/write?org=&bucket=&precision=``. :class:`InfluxServer` runs ``influxd`` with a config of
its own (free 127.0.0.1 ports, data in a temp dir) and :class:`InfluxV2Proxy` maps the v2 write
endpoint onto the v1 one, so everything the product sends reaches a real InfluxDB unchanged (same
line protocol, same gzip body). Both use the standard library only and never import Faust.

Outages can be simulated three ways: :meth:`InfluxServer.stop` / :meth:`InfluxServer.start` (the
server is gone, the proxy answers 503 as a gateway would, and restarts on the same data dir and
ports), :meth:`InfluxServer.pause` / :meth:`InfluxServer.resume` (the server hangs: requests time
out) and :meth:`InfluxV2Proxy.inject_write_failures` (the next N writes get a chosen status).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from fraudstream.local.ports import free_port

#: Environment variable naming the ``influxd`` binary (default: ``influxd`` on PATH).
INFLUXD_ENV = "FRAUDSTREAM_INFLUXD"
#: v2 write precisions and their InfluxDB 1.x spelling.
PRECISION_V2_TO_V1 = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
#: The ``code`` member of a v2 error body for an HTTP status.
_V2_ERROR_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    413: "request too large",
    422: "unprocessable entity",
    429: "too many requests",
    500: "internal error",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}

_CONFIG_TEMPLATE = """\
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{root}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[retention]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{host}:{http_port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
"""


class InfluxServerError(RuntimeError):
    """``influxd`` could not be started, or answered a request with an error."""


def find_influxd() -> str | None:
    """Path of the ``influxd`` binary ($FRAUDSTREAM_INFLUXD, then PATH, then /usr/bin)."""
    configured = os.environ.get(INFLUXD_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    found = shutil.which("influxd")
    if found:
        return found
    return "/usr/bin/influxd" if os.access("/usr/bin/influxd", os.X_OK) else None


class InfluxServer:
    """One ``influxd`` 1.x process with its own config, ports and data dir under ``root``.

    Ports are chosen on the first :meth:`start` and kept afterwards, so a proxy pointing at the
    server keeps working across :meth:`stop` / :meth:`start` (which keep the data).
    """

    def __init__(
        self, root: str | Path | None = None, *, influxd: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="influxd-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.influxd = influxd or find_influxd()
        self.host = host
        self.http_port = 0
        self.rpc_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    def __repr__(self) -> str:
        return f"InfluxServer(url={self.url!r}, root={str(self.root)!r}, running={self.running})"

    @property
    def url(self) -> str:
        """Base URL of the v1 HTTP API, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def config_path(self) -> Path:
        """The generated ``influxdb.conf``."""
        return self.root / "influxdb.conf"

    @property
    def log_path(self) -> Path:
        """Where ``influxd`` writes its stdout and stderr (appended across restarts)."""
        return self.root / "influxd.log"

    @property
    def running(self) -> bool:
        """True while the process exists (paused counts as running)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of ``influxd`` while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self, timeout: float = 30.0) -> None:
        """Start ``influxd`` (no-op if running) and wait until ``/ping`` answers."""
        if self.running:
            return
        if not self.influxd:
            raise InfluxServerError(
                f"influxd not found (install Debian's 'influxdb' or set {INFLUXD_ENV})"
            )
        if not self.http_port:
            self.http_port = free_port(self.host)
            self.rpc_port = free_port(self.host)
        self.config_path.write_text(
            _CONFIG_TEMPLATE.format(
                host=self.host, rpc_port=self.rpc_port, http_port=self.http_port, root=self.root
            )
        )
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.influxd, "run", "-config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise InfluxServerError(f"influxd exited with {code}:\n{self.log_tail()}")
            if self.ping(timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise InfluxServerError(
            f"influxd did not answer /ping within {timeout} s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop ``influxd`` (SIGTERM, then SIGKILL after ``timeout``); data stays on disk."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if self._paused:
                self.resume()
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        self._proc = None
        self._paused = False

    def kill(self) -> None:
        """Crash ``influxd`` with SIGKILL (what a power cut looks like); data stays on disk."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5.0)
        self._proc = None
        self._paused = False

    def restart(self, timeout: float = 30.0) -> None:
        """:meth:`stop` then :meth:`start` on the same ports and data."""
        self.stop()
        self.start(timeout)

    def pause(self) -> None:
        """Freeze ``influxd`` (SIGSTOP): the kernel accepts connections, nobody answers."""
        if self._proc is not None and self.running and not self._paused:
            os.kill(self._proc.pid, signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._proc is not None and self.running and self._paused:
            os.kill(self._proc.pid, signal.SIGCONT)
            self._paused = False

    def ping(self, timeout: float = 1.0) -> bool:
        """True when ``/ping`` answers 204."""
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=timeout) as resp:
                return bool(resp.status == 204)
        except (OSError, http.client.HTTPException):
            return False

    def query(
        self, q: str, db: str | None = None, *, epoch: str = "ns", timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Run InfluxQL; return every row of every series as ``{column: value, **series tags}``.

        ``time`` is an integer in ``epoch`` units (nanoseconds by default). Raises
        :class:`InfluxServerError` when a statement fails.
        """
        params = {"q": q, "epoch": epoch}
        if db is not None:
            params["db"] = db
        reading = q.lstrip().upper().startswith(("SELECT", "SHOW")) and " INTO " not in q.upper()
        body = self._request("GET" if reading else "POST", "/query", params, timeout=timeout)
        rows: list[dict[str, Any]] = []
        for result in json.loads(body or b"{}").get("results", []):
            if "error" in result:
                raise InfluxServerError(f"{q!r}: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags") or {}
                for values in series.get("values", []):
                    row = dict(zip(series["columns"], values, strict=True))
                    row.update(tags)
                    rows.append(row)
        return rows

    def execute(self, q: str, db: str | None = None) -> None:
        """Run a statement for its effect (CREATE, DROP, ...)."""
        self.query(q, db)

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE`` (a v2 bucket seen through the proxy); idempotent."""
        self.execute(f"CREATE DATABASE {quote_ident(name)}")

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE``; idempotent."""
        self.execute(f"DROP DATABASE {quote_ident(name)}")

    def databases(self) -> list[str]:
        """Names of the databases that exist."""
        return [row["name"] for row in self.query("SHOW DATABASES")]

    def write_lines(self, db: str, lines: Iterable[str], precision: str = "n") -> None:
        """Write line protocol straight to the v1 API (test setup, bypassing the proxy)."""
        data = "\n".join(lines).encode()
        self._request("POST", "/write", {"db": db, "precision": precision}, data=data)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of ``influxd``'s log, for error messages."""
        try:
            return self.log_path.read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Stop the server and delete ``root`` if this object created it."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> InfluxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        data: bytes | None = None,
        timeout: float = 30.0,
    ) -> bytes:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        if method == "POST" and data is None:
            data = b""
        request = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise InfluxServerError(f"{method} {path} -> {exc.code}: {detail}") from None


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxV2Proxy:
    """Serve the bits of the InfluxDB v2 HTTP API that fraudstream uses, on top of a v1 server.

    * ``POST /api/v2/write?org=O&bucket=B&precision=P`` -> ``POST /write?db=B&precision=p``
      (body and ``Content-Encoding`` unchanged); 204 on success, errors as v2 JSON
      ``{"code": ..., "message": ...}`` with the upstream status; 503 when the upstream is
      unreachable and 504 when it does not answer in time (what a gateway in front would say).
    * ``GET/POST /query`` forwarded unchanged (InfluxQL, as v2's 1.x-compatibility API does).
    * ``GET /ping`` forwarded; ``GET /health`` answered from ``/ping`` with v2-like JSON.

    With ``token`` set, writes and queries need ``Authorization: Token <token>`` (else 401).
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = 30.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream_url)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 8086
        self.upstream_timeout = upstream_timeout
        self.token = token
        self.host = host
        self.port = port
        self.outage = False
        self._lock = threading.Lock()
        self._injected: list[tuple[int, str | None, str | None]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.counters: dict[str, int] = {
            "write_requests": 0,
            "writes_ok": 0,
            "writes_failed": 0,
            "gzip_writes": 0,
            "injected_failures": 0,
        }
        self.last_write: dict[str, str] = {}

    def __repr__(self) -> str:
        upstream = f"{self.upstream_host}:{self.upstream_port}"
        return f"InfluxV2Proxy(url={self.url!r}, upstream={upstream!r})"

    @property
    def url(self) -> str:
        """Base URL to give ``influxdb-client``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> InfluxV2Proxy:
        """Listen (on ``port``, or a free one) and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _ProxyHTTPServer((self.host, self.port), _ProxyHandler)
        server.proxy = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"influx-v2-proxy:{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; new connections are refused (the port is kept for a later start)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def inject_write_failures(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next ``times`` write requests with ``status`` (without forwarding them)."""
        with self._lock:
            self._injected.extend([(status, retry_after, body)] * times)

    def set_outage(self, down: bool) -> None:
        """While ``down``, writes and ``/health`` get 503 (a load balancer with no backend)."""
        self.outage = down

    def _count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def _next_injected(self) -> tuple[int, str | None, str | None] | None:
        with self._lock:
            if self._injected:
                self.counters["injected_failures"] += 1
                return self._injected.pop(0)
            return None

    def __enter__(self) -> InfluxV2Proxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _ProxyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    proxy: InfluxV2Proxy


class _ProxyHandler(BaseHTTPRequestHandler):
    """One request to the proxy."""

    protocol_version = "HTTP/1.1"
    server: _ProxyHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    @property
    def proxy(self) -> InfluxV2Proxy:
        return self.server.proxy

    def do_GET(self) -> None:
        """Route GET requests."""
        path = urllib.parse.urlsplit(self.path).path
        if path == "/ping":
            self._forward_simple("GET", self.path, b"")
        elif path == "/health":
            self._health()
        elif path == "/query":
            if self._authorised():
                self._forward_simple("GET", self.path, b"")
        else:
            self._send_v2_error(404, f"path {path} not served by this proxy")

    def do_HEAD(self) -> None:
        """``HEAD /ping`` as InfluxDB answers it."""
        self.do_GET()

    def do_POST(self) -> None:
        """Route POST requests."""
        path = urllib.parse.urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        if path == "/api/v2/write":
            if self._authorised():
                self._write(body)
        elif path == "/query":
            if self._authorised():
                self._forward_simple("POST", self.path, body)
        elif path == "/ping":
            self._forward_simple("POST", self.path, body)
        else:
            self._send_v2_error(404, f"path {path} not served by this proxy")

    # --- endpoints --------------------------------------------------------------------------

    def _write(self, body: bytes) -> None:
        proxy = self.proxy
        proxy._count("write_requests")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        encoding = self.headers.get("Content-Encoding", "")
        if "gzip" in encoding:
            proxy._count("gzip_writes")
        proxy.last_write = {
            "org": query.get("org", ""),
            "bucket": query.get("bucket", ""),
            "precision": query.get("precision", "ns"),
            "content_encoding": encoding,
        }
        injected = proxy._next_injected()
        if injected is not None:
            status, retry_after, message = injected
            proxy._count("writes_failed")
            headers = {"Retry-After": retry_after} if retry_after else {}
            self._send_v2_error(status, message or "injected failure", headers)
            return
        if proxy.outage:
            proxy._count("writes_failed")
            self._send_v2_error(503, "service unavailable (simulated outage)")
            return
        bucket = query.get("bucket")
        if not bucket:
            proxy._count("writes_failed")
            self._send_v2_error(400, "bucket is required")
            return
        precision = PRECISION_V2_TO_V1.get(query.get("precision", "ns"))
        if precision is None:
            proxy._count("writes_failed")
            self._send_v2_error(400, f"invalid precision {query.get('precision')!r}")
            return
        target = "/write?" + urllib.parse.urlencode({"db": bucket, "precision": precision})
        headers = {"Content-Type": self.headers.get("Content-Type", "text/plain; charset=utf-8")}
        if encoding:
            headers["Content-Encoding"] = encoding
        result = self._upstream("POST", target, body, headers)
        if result is None:
            proxy._count("writes_failed")
            return
        status, _, data = result
        if status in (200, 204):
            proxy._count("writes_ok")
            self._send(204, b"", {})
            return
        proxy._count("writes_failed")
        self._send_v2_error(status, _v1_error_message(data))

    def _health(self) -> None:
        healthy = not self.proxy.outage and self._upstream_ping()
        doc: dict[str, Any] = {
            "name": "influxdb",
            "message": "ready for queries and writes" if healthy else "upstream unavailable",
            "status": "pass" if healthy else "fail",
            "checks": [],
        }
        data = json.dumps(doc).encode()
        self._send(200 if healthy else 503, data, {"Content-Type": "application/json"})

    # --- plumbing ---------------------------------------------------------------------------

    def _authorised(self) -> bool:
        token = self.proxy.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        if given in (f"Token {token}", f"Bearer {token}"):
            return True
        self._send_v2_error(401, "unauthorized access")
        return False

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._read_chunked()
            return b""
        try:
            return self.rfile.read(int(length))
        except ValueError:
            self._send_v2_error(400, "bad Content-Length")
            return None

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _upstream(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes] | None:
        """Send one request upstream; on a network failure answer 503/504 and return None."""
        proxy = self.proxy
        conn = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        try:
            conn.request(method, target, body=body if method != "GET" else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        except TimeoutError as exc:
            self._send_v2_error(504, f"upstream InfluxDB timed out: {exc}")
        except (OSError, http.client.HTTPException) as exc:
            self._send_v2_error(503, f"upstream InfluxDB unreachable: {exc}")
        finally:
            conn.close()
        return None

    def _upstream_ping(self) -> bool:
        proxy = self.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=2.0)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().status == 204
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _forward_simple(self, method: str, target: str, body: bytes) -> None:
        headers = {}
        for name in ("Content-Type", "Content-Encoding", "Accept", "Accept-Encoding"):
            if self.headers.get(name):
                headers[name] = self.headers[name]
        result = self._upstream(method, target, body, headers)
        if result is None:
            return
        status, upstream_headers, data = result
        keep = {
            k: v
            for k, v in upstream_headers.items()
            if k.lower() in ("content-type", "content-encoding", "x-influxdb-version", "request-id")
        }
        self._send(status, data, keep)

    def _send_v2_error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        code = _V2_ERROR_CODES.get(status, "internal error" if status >= 500 else "invalid")
        data = json.dumps({"code": code, "message": message}).encode()
        self._send(
            status, data, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        )

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        with contextlib.suppress(OSError):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 204 and status >= 200:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data and status != 204 and self.command != "HEAD":
                self.wfile.write(data)


def _v1_error_message(data: bytes) -> str:
    """The ``error`` member of a v1 error body (or the raw body)."""
    text = data.decode(errors="replace")
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return text
