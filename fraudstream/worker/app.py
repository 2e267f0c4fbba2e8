"""The worker's composition root: the Faust app, its topics, table, agent, timers and views.

Run with ``faust -A fraudstream.app worker -l info`` or ``fraudstream worker``. Importing
this module only defines things (the App object Faust needs, topic and table declarations,
the runtime's objects); files, sockets, patches and threads start at worker start
(:meth:`fraudstream.worker.runtime.WorkerRuntime.start`). All decisions are made by the
core's :class:`fraudstream.core.detector.Detector`; the shell only moves bytes.
"""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.types import StreamT

from fraudstream.settings import Settings, get_settings
from fraudstream.worker.faust_app import FraudstreamApp, faust_credentials
from fraudstream.worker.outbox import BatchOutbox
from fraudstream.worker.patches import raise_root_logger_level
from fraudstream.worker.runtime import WorkerRuntime
from fraudstream.worker.tables import (
    FaustState,
    declare_tables,
)
from fraudstream.worker.web import blueprint


def create_app(settings: Settings) -> FraudstreamApp:
    """A Faust app configured from ``settings`` (no agents yet)."""
    kafka, worker = settings.kafka, settings.worker
    app = FraudstreamApp(
        kafka.app_id,
        broker=kafka.broker_url,
        broker_credentials=faust_credentials(settings.kafka),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=kafka.partitions,
        store=worker.table_store,
        datadir=worker.data_dir,
        web_port=worker.web_port,
        web_host=worker.web_host,
        web_bind=worker.web_host,
        consumer_auto_offset_reset="earliest",
        producer_linger=kafka.producer_linger_ms / 1000.0,
        producer_max_batch_size=kafka.producer_max_batch_bytes,
        broker_session_timeout=kafka.broker_session_timeout,
        broker_heartbeat_interval=kafka.broker_heartbeat_interval,
        broker_rebalance_timeout=kafka.broker_rebalance_timeout,
        # Faust's exactly_once mode for its consuming side only (read_committed, recovery past
        # aborted records); the transactions are the worker's own (worker/transactions.py).
        processing_guarantee=worker.processing_guarantee,
    )
    app.keep_monitor = worker.faust_monitor
    return app


settings = get_settings()
app = create_app(settings)
input_topic = app.topic(
    settings.kafka.input_topic,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.kafka.partitions,
)
labels_topic = app.topic(
    settings.kafka.labels_topic,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.kafka.partitions,  # co-partitioned with the input: both keyed by userId
)
alerts_topic = app.topic(settings.kafka.alerts_topic, key_serializer="raw", value_serializer="raw")
dlq_topic = app.topic(settings.kafka.dlq_topic, key_serializer="raw", value_serializer="raw")
shadow_topic = app.topic(settings.kafka.shadow_topic, key_serializer="raw", value_serializer="raw")
#: What the agent reads: transactions, and labels unless they are switched off.
consumed_topic = app.topic(
    *settings.consumed_topics,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.kafka.partitions,
)
DAY = 86400.0
state = FaustState(
    *declare_tables(app, settings.kafka.partitions),
    settings.kafka.partitions,
    horizon=settings.detection.label_horizon_days * DAY,
    late_window=settings.detection.label_late_window_days * DAY,
    max_pending=settings.detection.pending_max_entries,
    max_held=settings.detection.held_labels_max_entries,
    cached_histories=settings.worker.cached_histories,
)
decisions_topic = (
    app.topic(settings.kafka.decisions_topic, key_serializer="raw", value_serializer="raw")
    if settings.kafka.decisions_topic
    else None
)
outbox = BatchOutbox(
    settings.kafka.alerts_topic,
    settings.kafka.dlq_topic,
    settings.kafka.decisions_topic or None,
    settings.kafka.shadow_topic,
)
runtime = WorkerRuntime(app, settings, state, outbox)
app.runtime = runtime
blueprint.register(app, url_prefix="")


@app.agent(consumed_topic, concurrency=1)  # concurrency > 1 loses messages (faust-streaming #606)
async def detect(stream: StreamT) -> None:
    """Validate, score and route every message of the input topic, a fetched batch at a time.

    Faust acknowledges a batch's offsets when the loop body returns, so everything the batch
    changed (profiles in the changelog, alerts, dead letters) is sent before that.
    """
    batched = cast(faust.Stream, stream)  # take_events is on the class, not on StreamT
    worker = settings.worker
    await runtime.rules_loaded()  # never score a transaction before the rules in force are in
    delivery = runtime.delivery
    if delivery is not None:  # FRAUDSTREAM_DIRECT_DELIVERY: the same batches, without events
        while True:
            batch = await delivery.take(
                worker.batch_max_events, worker.batch_max_wait, worker.batch_backlog_events
            )
            if batch:
                await runtime.handler.handle(batch)
                delivery.done(batch)
    async for events in batched.take_events(worker.batch_max_events, worker.batch_max_wait):
        await runtime.handler.handle(events)


@app.timer(interval=settings.worker.model_checkpoint_interval)
async def save_model() -> None:
    """Checkpoint the model periodically; a crash loses at most one interval of learning."""
    runtime.save_model()


@app.timer(interval=settings.worker.progress_interval)
async def report_progress() -> None:
    """A progress line in the log (and a metrics point), so operators see the worker move."""
    runtime.report_progress()


@app.task
async def follow_rules() -> None:
    """Read the rules control topic, then apply every change while the worker runs."""
    await runtime.follow_rules()


@app.task
async def quiet_root_logger() -> None:
    """Stop building debug log records nobody reads (see :func:`raise_root_logger_level`)."""
    raise_root_logger_level()


@app.task
async def declare_topics() -> None:
    """Create the input, alert and dead-letter topics if missing, with the configured partitions."""
    for topic in (
        input_topic,
        labels_topic,
        alerts_topic,
        dlq_topic,
        decisions_topic,
        shadow_topic,
    ):
        if topic is not None:
            await topic.maybe_declare()


@app.on_worker_init.connect  # type: ignore[arg-type]  # mode's stub rejects plain receivers too
def start_runtime(app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Worker start: checkpoint, sink, patches and the broker watchdog (before the consumer).

    The watchdog runs from here, not from a Faust timer: timers start only after table
    recovery, and recovery waits on the broker, so a broker frozen at start-up would hang.
    """
    runtime.start()


@app.on_rebalance_complete.connect  # type: ignore[arg-type]  # as on_before_shutdown
async def on_rebalanced(app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Partitions went and came with their table rows: the pending store reindexes."""
    state.rebalanced()


@app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode's stub rejects async receivers
async def on_shutdown(app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Checkpoint the model, then give buffered points a bounded time to reach InfluxDB."""
    await runtime.shutdown()
