"""A broker connection that goes silent: the worker's producer sends again on a new one.

When the broker's host dies without closing its connections, or a NAT or load balancer drops
them, a produce request on such a connection never gets an answer, and no FIN or reset comes
either. aiokafka keeps one produce request in flight per broker and ends the wait only at its
request timeout, which Faust sets to 1200 s: alerts, dead letters and changelog writes (and so
the worker's stream) would wait 20 minutes. The worker's producer is built by Faust exactly as
here, with ``FRAUDSTREAM_PRODUCER_REQUEST_TIMEOUT`` applied by ``fraudstream.worker.patches``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import faust
import pytest

from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.ports import free_port
from fraudstream.local.tansu import BrokerUnavailable, TansuBroker
from fraudstream.worker.patches import set_producer_request_timeout
from tests.support.environment import require
from tests.support.kafka import read_records
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REQUEST_TIMEOUT = 2.0  # FRAUDSTREAM_PRODUCER_REQUEST_TIMEOUT here, s
#: A resend takes a metadata refresh and a new connection on top of the request timeout.
RESEND_SLACK = 8.0
#: Far below Faust's 1200 s: without the setting the send is still waiting when this expires.
GIVE_UP_AFTER = 30.0
TOPIC = "silent-connection"
STOP_TIMEOUT = 10.0


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[tuple[TansuBroker, TcpProxy]]:
    """A broker of this test alone, reached (and advertised) through a proxy."""
    port = free_port()
    proxy = TcpProxy(("127.0.0.1", port)).start()
    try:
        broker = TansuBroker(
            port=port, advertised_port=proxy.port, log_path=tmp_path / "tansu.log"
        ).start()
    except BrokerUnavailable as exc:
        proxy.stop()
        require(f"embedded broker unavailable: {exc}")
    ensure_topics_sync(broker.bootstrap, [TOPIC], 1)
    yield broker, proxy
    broker.stop()
    proxy.stop()


@pytest.fixture(autouse=True)
def request_timeout() -> Iterator[None]:
    """The worker's setting, for this test only."""
    set_producer_request_timeout(REQUEST_TIMEOUT)
    yield
    set_producer_request_timeout(None)


def with_worker_producer(broker: TansuBroker, scenario: Callable[[Any], Awaitable[float]]) -> float:
    """Run ``scenario`` with an aiokafka producer built by Faust as the worker's is."""

    async def go() -> float:
        app = faust.App(f"silent-{time.monotonic_ns()}", broker=broker.url)
        producer = cast(Any, app.producer)._new_producer()  # as the worker's Faust does
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC, b"before")  # a connection to the broker
            return await scenario(producer)
        finally:
            # stop() flushes: after a failure it could wait on the stuck send for 1200 s.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(producer.stop(), STOP_TIMEOUT)

    return asyncio.run(go())


def test_a_request_on_a_silent_connection_is_sent_again_on_a_new_one(
    proxied_broker: tuple[TansuBroker, TcpProxy],
) -> None:
    broker, proxy = proxied_broker

    async def silence_then_send(producer: Any) -> float:
        proxy.silence()
        started = time.monotonic()
        await asyncio.wait_for(producer.send_and_wait(TOPIC, b"after"), GIVE_UP_AFTER)
        return time.monotonic() - started

    took = with_worker_producer(broker, silence_then_send)
    assert REQUEST_TIMEOUT <= took < REQUEST_TIMEOUT + RESEND_SLACK, took
    values = [r.value for r in read_records(broker.bootstrap, TOPIC, 2)]
    assert values == [b"before", b"after"]


def test_an_outage_longer_than_the_request_timeout_is_still_ridden_out(
    proxied_broker: tuple[TansuBroker, TcpProxy],
) -> None:
    """Only the wait per request is short: a record is retried for Faust's 1200 s."""
    broker, proxy = proxied_broker
    outage = 3 * REQUEST_TIMEOUT

    async def cut_then_send(producer: Any) -> float:
        proxy.cut()
        delivered = await producer.send(TOPIC, b"during")
        await asyncio.sleep(outage)
        proxy.restore()
        started = time.monotonic()
        await asyncio.wait_for(delivered, GIVE_UP_AFTER)
        return time.monotonic() - started

    after_restore = with_worker_producer(broker, cut_then_send)
    assert after_restore < RESEND_SLACK, after_restore
    values = [r.value for r in read_records(broker.bootstrap, TOPIC, 2)]
    assert values == [b"before", b"during"]
