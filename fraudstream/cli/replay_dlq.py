"""``fraudstream replay-dlq``: send dead-lettered payloads back to the topic they came from.

Use it after fixing what refused them (a raised size limit, a producer bug fixed upstream
and the payloads corrected, a new accepted field). Each record's original key and payload
(``payloadBase64`` decoded) are re-sent to its source topic: transactions to the input topic,
labels (``invalid_label``, ``unknown_transaction``) to the labels topic; a dead letter from
any other topic is skipped and named, since sending it elsewhere would feed the wrong reader.
Two kinds of copy are not the message as received and are skipped too: truncated (oversized)
payloads, and payloads whose card numbers were masked (``masked: true``; a dead letter
written before that field existed is replayed as before). Dead letters written after the
replay started (a replayed message refused again) are not replayed, so the command cannot
feed itself.
"""

from __future__ import annotations

import base64
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

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
#: Dead letters named (by source topic, partition and offset) in the summary, per kind of skip.
NAMED_AT_MOST = 5


class Skip(Enum):
    """Why a dead letter is not re-sent."""

    #: Not one of the ``--reason`` values asked for.
    NOT_ASKED = "not_asked"
    #: Only a truncated copy was kept (an oversized message), or no payload at all.
    TRUNCATED = "truncated"
    #: Masking card numbers changed the kept payload: re-sending it would send altered data.
    MASKED = "masked"
    #: Read from a topic that is neither the input nor the labels topic.
    FOREIGN = "foreign"


@dataclass
class ReplayTally:
    """What a replay did with the dead letters it read, for its summary."""

    input_topic: str
    labels_topic: str
    #: Re-sent dead letters per destination (their source) topic.
    sent: Counter[str] = field(default_factory=Counter)
    skipped: Counter[Skip] = field(default_factory=Counter)
    #: The first few skipped dead letters of each kind, by source, so they can be found.
    named: dict[Skip, list[str]] = field(default_factory=dict)

    def skip(self, why: Skip, record: dict[str, object]) -> None:
        """Count a dead letter that is not re-sent, and remember where it came from."""
        self.skipped[why] += 1
        names = self.named.setdefault(why, [])
        if len(names) < NAMED_AT_MOST:
            names.append(source_name(record))

    def summary(self, dry_run: bool) -> str:
        """The closing report: how many were re-sent where, and why others were not."""
        verb = "would re-send" if dry_run else "re-sent"
        sent = sum(self.sent.values())
        if len(self.sent) > 1:
            where = ", ".join(f"{topic} ({n})" for topic, n in sorted(self.sent.items()))
        else:
            where = next(iter(self.sent), self.input_topic)
        lines = [f"{verb} {sent} dead letters to {where}; skipped {self.skipped.total()}"]
        explained = {
            Skip.NOT_ASKED: "not of the reasons asked for",
            Skip.TRUNCATED: "only a truncated copy was kept (oversized)",
            Skip.MASKED: "their payload held card numbers, masked (never re-sent altered)",
            Skip.FOREIGN: (
                f"from a topic that is neither the input ({self.input_topic}) nor the labels "
                f"topic ({self.labels_topic})"
            ),
        }
        for why, text in explained.items():
            n = self.skipped[why]
            if not n:
                continue
            names = self.named.get(why, []) if why is not Skip.NOT_ASKED else []
            more = ", ..." if n > len(names) else ""
            listed = f": {', '.join(names)}{more}" if names else ""
            lines.append(f"  {n} skipped: {text}{listed}")
        return "\n".join(lines)


async def replay_dlq(reasons: set[str], idle_timeout: float, dry_run: bool) -> int:
    """Re-send every dead letter (optionally only some reasons) read until the topic is idle,
    each to the topic it was read from; masked, truncated and foreign ones are skipped."""
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
    tally = ReplayTally(settings.kafka.input_topic, settings.kafka.labels_topic)
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
                    target = replay_target(record, reasons, tally)
                    if isinstance(target, Skip):
                        tally.skip(target, record)
                        continue
                    topic, payload = target
                    if not dry_run:
                        await producer.send(topic, payload, key=message.key)
                    tally.sent[topic] += 1
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    print(tally.summary(dry_run), file=sys.stderr)
    return 0


def replay_target(
    record: dict[str, object], reasons: set[str], tally: ReplayTally
) -> tuple[str, bytes] | Skip:
    """Where a dead letter goes back to and what is sent, or why it is not re-sent.

    The topic is the one it was read from (the input or the labels topic, as configured in
    ``tally``): a label replayed to the input topic would be refused as a transaction.
    """
    if reasons and record.get("reason") not in reasons:
        return Skip.NOT_ASKED
    payload = original_payload(record)
    if payload is None:
        return Skip.TRUNCATED
    if record.get("masked") is True:  # absent on older dead letters: replayed as before
        return Skip.MASKED
    topic = source_topic(record)
    if topic is None or topic not in (tally.input_topic, tally.labels_topic):
        return Skip.FOREIGN
    return topic, payload


def source_topic(record: dict[str, object]) -> str | None:
    """The topic a dead letter's message was read from (None when it does not say)."""
    source = record.get("source")
    topic = source.get("topic") if isinstance(source, dict) else None
    return topic if isinstance(topic, str) and topic else None


def source_name(record: dict[str, object]) -> str:
    """Where a dead letter's message was read from, as ``topic[partition]@offset``."""
    source = record.get("source")
    if not isinstance(source, dict):
        return "(no source)"
    return f"{source.get('topic') or '?'}[{source.get('partition')}]@{source.get('offset')}"


def original_payload(record: dict[str, object]) -> bytes | None:
    """The message as it was kept, or None when only a truncated copy was kept."""
    if record.get("truncated"):
        return None
    if isinstance(record.get("payloadBase64"), str):
        return base64.b64decode(str(record["payloadBase64"]))
    if isinstance(record.get("payload"), str):
        return str(record["payload"]).encode()
    return None
