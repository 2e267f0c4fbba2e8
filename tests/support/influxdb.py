"""Pytest fixtures for a real InfluxDB 1.6 behind the v2 proxy (load them with pytest_plugins).

Usage in a test module (pytest registers this module as a plugin, so its fixtures apply)::

    pytest_plugins = ["tests.support.influxdb"]

* ``influx_server`` (session): a running :class:`InfluxServer`; do not stop or pause it.
* ``fresh_influx_server`` (function): a server of the test's own, free to stop, pause, restart.
* ``influx_proxy`` (function): an :class:`InfluxV2Proxy` on a free port in front of the server
  of the test (``fresh_influx_server`` when the test asks for it, else ``influx_server``);
  it requires ``Authorization: Token TEST_TOKEN``.
* ``influx_bucket`` (function): name of a fresh database (= v2 bucket), dropped afterwards.
* ``influx_sink_factory`` (function): ``make(**overrides) -> InfluxSink`` writing to the proxy
  and bucket with test-friendly timings; every sink it made is closed at teardown.

When ``influxd`` cannot start the fixtures skip, except with ``CI=true`` where they fail.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fraudstream.sinks.influx import InfluxSink
from tests.support.environment import require
from tests.support.influxdb_server import InfluxServer, InfluxServerError, InfluxV2Proxy

TEST_TOKEN = "fraudstream-test-token-7d1f0c9e"
TEST_ORG = "fraud-detection-org"
#: Fast timings for tests; individual tests override what they exercise.
FAST_SINK_SETTINGS: dict[str, Any] = {
    "flush_interval": 0.05,
    "retry_initial": 0.05,
    "retry_max": 0.5,
    "request_timeout": 5.0,
}


def _start_server(root: Path) -> InfluxServer:
    server = InfluxServer(root)
    try:
        server.start()
    except (InfluxServerError, OSError) as exc:
        require(f"cannot start influxd (Debian package 'influxdb' 1.6): {exc}")
    return server


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A real influxd for the whole session (shared: never stop or pause it in a test)."""
    server = _start_server(tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture
def fresh_influx_server(tmp_path: Path) -> Iterator[InfluxServer]:
    """A real influxd of the test's own, for outages (stop/start keep its data dir and ports)."""
    server = _start_server(tmp_path / "influxd")
    yield server
    server.stop()


@pytest.fixture
def influx_proxy(request: pytest.FixtureRequest) -> Iterator[InfluxV2Proxy]:
    """The v2-API proxy in front of the test's server; needs ``Token TEST_TOKEN``."""
    name = (
        "fresh_influx_server" if "fresh_influx_server" in request.fixturenames else "influx_server"
    )
    server: InfluxServer = request.getfixturevalue(name)
    proxy = InfluxV2Proxy(server.url, token=TEST_TOKEN).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def influx_bucket(request: pytest.FixtureRequest, influx_proxy: InfluxV2Proxy) -> Iterator[str]:
    """A fresh database on the test's server, used as the v2 bucket; dropped afterwards."""
    name = (
        "fresh_influx_server" if "fresh_influx_server" in request.fixturenames else "influx_server"
    )
    server: InfluxServer = request.getfixturevalue(name)
    bucket = f"test_{uuid.uuid4().hex[:12]}"
    server.create_database(bucket)
    yield bucket
    if server.running:
        with contextlib.suppress(InfluxServerError):
            server.drop_database(bucket)


@pytest.fixture
def influx_sink_factory(
    influx_proxy: InfluxV2Proxy, influx_bucket: str
) -> Iterator[Callable[..., InfluxSink]]:
    """``make(**overrides)``: an InfluxSink on the proxy and bucket; all closed at teardown."""
    made: list[InfluxSink] = []

    def make(**overrides: Any) -> InfluxSink:
        kwargs: dict[str, Any] = {
            "url": influx_proxy.url,
            "token": TEST_TOKEN,
            "org": TEST_ORG,
            "bucket": influx_bucket,
            **FAST_SINK_SETTINGS,
        }
        kwargs.update(overrides)
        sink = InfluxSink(**kwargs)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close(timeout=0)


def worker_influx_env(proxy: InfluxV2Proxy, bucket: str) -> dict[str, str]:
    """Settings that make a worker write to the test's InfluxDB bucket through the proxy."""
    return {
        "FRAUDSTREAM_INFLUX_ENABLED": "true",
        "FRAUDSTREAM_INFLUX_URL": proxy.url,
        "FRAUDSTREAM_INFLUX_TOKEN": TEST_TOKEN,
        "FRAUDSTREAM_INFLUX_ORG": TEST_ORG,
        "FRAUDSTREAM_INFLUX_BUCKET": bucket,
        "FRAUDSTREAM_INFLUX_FLUSH_INTERVAL": "0.2",
    }
