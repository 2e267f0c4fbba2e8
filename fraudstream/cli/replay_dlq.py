"""``fraudstream replay-dlq``: send dead-lettered payloads back to the input topic.

Use it after fixing what refused them (a raised size limit, a producer bug fixed upstream
and the payloads corrected, a new accepted field). Each record's original key and payload
(``payloadBase64`` decoded) are re-sent; truncated (oversized) payloads cannot be replayed
and are counted as skipped. Dead letters written after the replay started (a replayed
message refused again) are not replayed, so the command cannot feed itself.
"""

from __future__ import annotations

import base64
import sys
import time
from datetime import datetime, timezone

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from fraudstream.core.records import isoformat_utc
from fraudstream.kafka.connection import (
    AuthFailureWatch,
    aiokafka_security,
    bootstrap_of,
    connection_failure,
)
from fraudstream.settings import get_settings

POLL_MS = 500


async def replay_dlq(reasons: set[str], idle_timeout: float, dry_run: bool) -> int:
    """Re-send every dead letter (optionally only some reasons) read until the topic is idle."""
    settings = get_settings()
    bootstrap = bootstrap_of(settings.kafka.broker_url)
    security = aiokafka_security(settings.kafka)
    consumer = AIOKafkaConsumer(
        settings.kafka.dlq_topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        **security,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **security)
    with AuthFailureWatch() as watch:
        try:
            await consumer.start()
            await producer.start()
        except KafkaError as exc:
            await consumer.stop()
            await producer.stop()
            print(
                f"error: {connection_failure(exc, settings.kafka, watch.failed)}", file=sys.stderr
            )
            return 1
    sent = skipped = 0
    started = isoformat_utc(datetime.now(timezone.utc))
    last_record = time.monotonic()
    try:
        while time.monotonic() - last_record < idle_timeout:
            batches = await consumer.getmany(timeout_ms=POLL_MS)
            for messages in batches.values():
                for message in messages:
                    record = orjson.loads(message.value or b"{}")
                    if str(record.get("receivedAt", "")) >= started:
                        continue  # refused again during this replay: not ours to resend
                    last_record = time.monotonic()
                    payload = original_payload(record)
                    if (reasons and record.get("reason") not in reasons) or payload is None:
                        skipped += 1
                        continue
                    if not dry_run:
                        await producer.send(settings.kafka.input_topic, payload, key=message.key)
                    sent += 1
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    verb = "would re-send" if dry_run else "re-sent"
    print(
        f"{verb} {sent} dead letters to {settings.kafka.input_topic}; skipped {skipped}",
        file=sys.stderr,
    )
    return 0


def original_payload(record: dict[str, object]) -> bytes | None:
    """The message as it was received, or None when only a truncated copy was kept."""
    if record.get("truncated"):
        return None
    if isinstance(record.get("payloadBase64"), str):
        return base64.b64decode(str(record["payloadBase64"]))
    if isinstance(record.get("payload"), str):
        return str(record["payload"]).encode()
    return None
