"""``fraudstream tail``: follow the alerts topic (and the DLQ) without Kafka's console tools."""

from __future__ import annotations

import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from fraudstream.cli.console import format_alert, format_dead_letter
from fraudstream.cli.exits import EXIT_NOT_CONNECTED, EXIT_REFUSED
from fraudstream.kafka.connection import (
    AuthFailureWatch,
    aiokafka_security,
    bootstrap_of,
    connection_failure,
)
from fraudstream.settings import get_settings

POLL_MS = 500


async def tail(
    include_dlq: bool, from_beginning: bool, raw_json: bool, max_records: int, idle_timeout: float
) -> int:
    """Print records until interrupted, ``max_records`` were shown or ``idle_timeout`` passed."""
    settings = get_settings()
    topics = [settings.kafka.alerts_topic] + ([settings.kafka.dlq_topic] if include_dlq else [])
    try:
        bootstrap = bootstrap_of(settings.kafka.broker_url)
        security = aiokafka_security(settings.kafka)
    except (OSError, ValueError) as exc:  # a bad port, an unreadable CA file, SASL without a user
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,  # no group: tail never moves anybody's committed offsets
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        **security,
    )
    with AuthFailureWatch() as watch:
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            print(
                f"error: {connection_failure(exc, settings.kafka, watch.failed)}", file=sys.stderr
            )
            return EXIT_NOT_CONNECTED
    print(
        f"following {', '.join(topics)} on {settings.kafka.broker_url} (Ctrl-C to stop)",
        file=sys.stderr,
    )
    shown = 0
    last_record = time.monotonic()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=POLL_MS)
            for tp, messages in batches.items():
                for message in messages:
                    print(
                        render(message.value or b"", tp.topic == settings.kafka.dlq_topic, raw_json)
                    )
                    shown += 1
                    last_record = time.monotonic()
                    if max_records and shown >= max_records:
                        return 0
            sys.stdout.flush()
            if idle_timeout and time.monotonic() - last_record > idle_timeout:
                return 0
    finally:
        await consumer.stop()


def render(value: bytes, is_dead_letter: bool, raw_json: bool) -> str:
    """One printable line for an alert or dead-letter record."""
    if raw_json:
        return value.decode("utf-8", errors="replace")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"??? undecodable record: {value[:80]!r}"
    return format_dead_letter(record) if is_dead_letter else format_alert(record)
