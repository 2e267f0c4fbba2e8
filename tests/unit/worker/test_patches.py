"""Faust knobs: the fetch-wait override reaches the consumer, the Monitor can be left out."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from fraudstream.worker.faust_app import FraudstreamApp, RebalanceSensor
from fraudstream.worker.patches import set_fetch_max_wait


def test_faust_still_hard_codes_the_fetch_wait_we_override() -> None:
    method = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    source = inspect.getsource(getattr(method, "__fraudstream_original__", method))
    assert "fetch_max_wait_ms=1500" in source, "Faust changed: revisit fraudstream.worker.patches"
    assert faust.__version__.startswith("0.15."), faust.__version__


def test_worker_consumer_gets_the_configured_fetch_wait() -> None:
    async def build() -> int:
        set_fetch_max_wait(42)
        app = faust.App("fetch-wait-test", broker="kafka://127.0.0.1:1")
        thread = app.consumer._thread
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(build()) == 42


def test_without_the_monitor_only_the_rebalance_sensor_remains() -> None:
    app = FraudstreamApp("tuning-test", broker="kafka://127.0.0.1:1")
    app.keep_monitor = False
    app.on_init_dependencies()
    sensors = list(app.sensors)
    assert app.monitor not in sensors
    assert [type(s) for s in sensors] == [RebalanceSensor]
    assert app.sensors.on_rebalance_start(app), "empty state makes Faust warn at each rebalance"


def test_the_monitor_stays_when_asked_for() -> None:
    app = FraudstreamApp("tuning-test-2", broker="kafka://127.0.0.1:1")
    app.on_init_dependencies()
    assert app.monitor in list(app.sensors)


def test_installed_versions_are_the_ones_the_patches_were_checked_against() -> None:
    from importlib.metadata import version

    from fraudstream.worker.patches import CHECKED_AGAINST

    for package, prefix in CHECKED_AGAINST.items():
        assert version(package).startswith(prefix), (
            f"{package} {version(package)} is not {prefix}*: revisit fraudstream.worker.patches"
        )


def test_the_private_names_the_patches_use_still_exist() -> None:
    import contextvars

    from faust import streams
    from faust.transport.drivers.aiokafka import Producer
    from faust.utils.terminal import SpinnerHandler

    assert isinstance(streams._current_event, contextvars.ContextVar)
    assert callable(Producer._ensure_producer)
    assert issubclass(SpinnerHandler, object)
    # What the seek of never-committed partitions (stop_flow_while_seeking) goes through.
    thread = faust_aiokafka.AIOKafkaConsumerThread
    assert callable(thread._ensure_consumer) and callable(thread.call_thread)
    assert callable(faust_aiokafka.Consumer._is_changelog_tp)
    assert "if offset and offset > 0:" in inspect.getsource(AIOKafkaConsumer.seek_to_committed)


def test_aiokafka_still_pauses_with_a_future_of_the_running_loop() -> None:
    """Why DirectDelivery pauses input partitions from Faust's consumer thread: the pause's
    future belongs to the loop it is made on, and aiokafka's fetch routine waits on it."""
    from aiokafka.consumer.subscription_state import TopicPartitionState

    source = inspect.getsource(TopicPartitionState.pause)
    assert "self._resume_fut = create_future()" in source, "revisit DirectDelivery.seek_started"
    app = faust.App("pause-thread", broker="kafka://127.0.0.1:1")
    thread = app.consumer._thread  # type: ignore[attr-defined]
    assert thread._consumer is None  # set by Faust when the thread starts its aiokafka consumer
    assert isinstance(thread.thread_loop, asyncio.AbstractEventLoop)
    assert callable(AIOKafkaConsumer.pause) and callable(AIOKafkaConsumer.paused)


def test_setting_the_fetch_wait_twice_wraps_faust_once() -> None:
    from fraudstream.worker import patches

    set_fetch_max_wait(10)
    first = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    set_fetch_max_wait(20)
    second = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert getattr(first, patches._WRAPPED) is getattr(second, patches._WRAPPED)


def test_aiokafka_still_gives_each_connection_the_client_request_timeout() -> None:
    from aiokafka.client import AIOKafkaClient

    source = inspect.getsource(AIOKafkaClient._get_conn)
    assert "request_timeout_ms=self._request_timeout_ms" in source, "revisit worker.patches"


def test_producer_request_timeout_shortens_the_wait_per_request_only() -> None:
    from fraudstream.worker.patches import set_producer_request_timeout

    async def build() -> tuple[int, float]:
        set_producer_request_timeout(7)
        try:
            app = faust.App("request-timeout-test", broker="kafka://127.0.0.1:1")
            producer = app.producer._new_producer()  # type: ignore[attr-defined]
        finally:
            set_producer_request_timeout(None)
        # Per request (what each connection waits) and per record (the delivery deadline).
        return producer.client._request_timeout_ms, producer._message_accumulator._batch_ttl

    per_request, per_record = asyncio.run(build())
    assert per_request == 7000
    assert per_record == 1200.0  # Faust's producer_request_timeout, unchanged


def test_faust_still_resumes_input_partitions_before_seeking_them_to_committed_offsets() -> None:
    """The window :func:`stop_flow_while_seeking` closes; gone upstream, the patch can go."""
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer

    recovery = inspect.getsource(Recovery.on_recovery_completed)
    assert recovery.index("consumer.resume_partitions(") < recovery.index("perform_seek()")
    # What makes stopping the flow end a batch fetched before the seek.
    assert "if not self.flow_active:\n                    break" in inspect.getsource(
        Consumer.getmany
    )


def seek_flow(flowing: bool) -> tuple[list[bool], bool]:
    """Whether the flow ran during a seek to committed offsets, and after it."""
    from fraudstream.worker.patches import stop_flow_while_seeking

    async def seek() -> tuple[list[bool], bool]:
        stop_flow_while_seeking()
        app = faust.App("seek-flow-test", broker="kafka://127.0.0.1:1")
        consumer = app.consumer
        (consumer.resume_flow if flowing else consumer.stop_flow)()
        during: list[bool] = []

        async def seek_to_committed() -> dict:
            during.append(consumer.flow_active)
            return {}

        consumer.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
        await consumer.perform_seek()
        return during, consumer.flow_active

    return asyncio.run(seek())


def test_a_seek_to_committed_offsets_stops_the_flow_and_resumes_it_after() -> None:
    assert seek_flow(flowing=True) == ([False], True)


def test_a_seek_while_the_flow_is_stopped_leaves_it_stopped() -> None:
    assert seek_flow(flowing=False) == ([False], False)


def test_faust_still_calls_the_transaction_hooks_we_take_over_where_we_rely_on_them() -> None:
    from faust.app.base import App
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer, TransactionManager

    assigned = inspect.getsource(App._on_partitions_assigned)
    hooks, recovery = "consumer.transactions.on_rebalance", "self.tables.on_rebalance"
    assert assigned.index(hooks) < assigned.index(recovery), "producers must fence first"
    assert "self.transactions.commit(" in inspect.getsource(Consumer._commit_offsets)
    assert list(inspect.signature(TransactionManager.on_rebalance).parameters) == [
        "self",
        "assigned",
        "revoked",
        "newly_assigned",
    ]
    # What exactly_once mode gives the consuming side, which the worker keeps.
    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    source = inspect.getsource(getattr(create, "__fraudstream_original__", create))
    assert 'isolation_level = "read_committed"' in source
    assert "detect_aborted_tx" in inspect.getsource(Recovery)


def test_routed_transactions_take_the_rebalance_and_make_faust_commits_no_ops() -> None:
    from faust.transport.consumer import TransactionManager

    from fraudstream.worker.patches import route_transactions

    seen: list[tuple[object, object]] = []

    class Hooks:
        async def on_rebalance(self, assigned: object, revoked: object) -> None:
            seen.append((assigned, revoked))

    original_commit = TransactionManager.commit
    route_transactions(Hooks())
    try:
        manager = object.__new__(TransactionManager)
        asyncio.run(manager.on_rebalance({"a"}, {"r"}, {"a"}))
        assert seen == [({"a"}, {"r"})]
        assert asyncio.run(manager.commit({"tp": 1})) is True
    finally:
        route_transactions(None)
    assert TransactionManager.commit is original_commit, "None restores Faust's own"


def test_exactly_once_faust_still_takes_recovery_highwaters_from_fetch_state() -> None:
    method = faust_aiokafka.AIOKafkaConsumerThread._highwaters
    source = inspect.getsource(getattr(method, "__fraudstream_original__", method))
    assert "last_stable_offset(tp)" in source, "Faust changed: revisit highwaters_from_the_broker"


def test_recovery_highwaters_come_from_list_offsets_whatever_was_fetched() -> None:
    from fraudstream.worker.patches import highwaters_from_the_broker

    class Consumer:
        async def end_offsets(self, partitions: list[str]) -> dict[str, int]:
            return {tp: 7 for tp in partitions}

        def last_stable_offset(self, tp: str) -> None:
            return None  # nothing fetched yet: what broke recovery

    highwaters_from_the_broker()
    thread = object.__new__(faust_aiokafka.AIOKafkaConsumerThread)
    thread._ensure_consumer = Consumer  # type: ignore[method-assign]
    assert asyncio.run(thread._highwaters(["changelog-0"])) == {"changelog-0": 7}


def seeks_after_committed(committed: dict[str, int | None], reset: str) -> list[tuple]:
    """What the patched consumer thread does to each partition after aiokafka's own seek."""
    from types import SimpleNamespace

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from fraudstream.worker.patches import stop_flow_while_seeking

    stop_flow_while_seeking()
    calls: list[tuple] = []

    class FakeKafkaConsumer:
        async def seek_to_committed(self) -> dict[str, int | None]:
            return committed

        def seek(self, tp: str, offset: int) -> None:
            calls.append(("seek", tp, offset))

        async def seek_to_beginning(self, *tps: str) -> None:
            calls.append(("beginning", *tps))

        async def seek_to_end(self, *tps: str) -> None:
            calls.append(("end", *tps))

    async def call_thread(fun: Any, *args: Any) -> Any:
        return await fun(*args)

    kafka_consumer = FakeKafkaConsumer()
    thread = SimpleNamespace(
        consumer=SimpleNamespace(
            _is_changelog_tp=lambda tp: tp.endswith("-changelog"),
            app=SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset)),
        ),
        _ensure_consumer=lambda: kafka_consumer,
        call_thread=call_thread,
    )
    returned = asyncio.run(AIOKafkaConsumerThread.seek_to_committed(thread))  # type: ignore[arg-type]
    assert returned == committed
    return calls


def test_a_seek_to_committed_offsets_also_places_input_partitions_never_committed() -> None:
    committed = {"tx": 12, "labels": None, "new": 0, "table-changelog": None}
    assert seeks_after_committed(committed, "earliest") == [
        ("seek", "new", 0),
        ("beginning", "labels"),
    ]
    assert seeks_after_committed(committed, "latest") == [("seek", "new", 0), ("end", "labels")]


def test_a_seek_to_committed_offsets_leaves_committed_and_changelog_partitions_to_aiokafka() -> (
    None
):
    assert seeks_after_committed({"tx": 12, "table-changelog": None}, "earliest") == []


def test_faust_still_runs_the_fetch_loop_our_copy_was_made_from() -> None:
    """``_drain_delivering_now`` is Faust 0.15.3's loop with one change: any change there
    (a new check, a different commit or gap rule) must reach the copy."""
    import hashlib

    from faust.transport.consumer import Consumer

    method = Consumer._drain_messages
    source = inspect.getsource(getattr(method, "__fraudstream_original__", method))
    assert hashlib.sha256(source.encode()).hexdigest() == (
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
    ), "Faust's Consumer._drain_messages changed: revisit fraudstream.worker.patches"
