"""``fraudstream label``: publish one label, as a chargeback system or an analyst would.

The label goes to the labels topic keyed by the userId, so it reaches the worker that holds
the user's transactions; the worker dead-letters a label for a transaction it does not hold.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from fraudstream.cli.exits import EXIT_NOT_CONNECTED
from fraudstream.core.records import isoformat_utc
from fraudstream.kafka.connection import (
    AuthFailureWatch,
    aiokafka_security,
    bootstrap_of,
    connection_failure,
)
from fraudstream.settings import get_settings


def label_record(transaction_id: str, user_id: str, verdict: str, source: str) -> bytes:
    """The label JSON the worker reads.

    >>> record = orjson.loads(label_record("tx-1", "42", "fraud", "analyst"))
    >>> record["transactionId"], record["userId"], record["label"], record["source"]
    ('tx-1', '42', 'fraud', 'analyst')
    """
    return orjson.dumps(
        {
            "transactionId": transaction_id,
            "userId": user_id,
            "label": verdict,
            "labeledAt": isoformat_utc(datetime.now(timezone.utc)),
            "source": source,
        }
    )


async def send_label(
    transaction_id: str, user_id: str, verdict: str, source: str, topic: str | None
) -> int:
    """Send one label and wait for the broker's acknowledgement; 0 when it is on the topic."""
    settings = get_settings()
    topic = topic or settings.kafka.labels_topic
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_of(settings.kafka.broker_url),
        request_timeout_ms=15_000,
        **aiokafka_security(settings.kafka),
    )
    try:
        with AuthFailureWatch() as watch:
            await producer.start()
        value = label_record(transaction_id, user_id, verdict, source)
        metadata = await producer.send_and_wait(topic, value, key=user_id.encode())
    except KafkaError as exc:
        reason = connection_failure(exc, settings.kafka, watch.failed)
        print(f"error: label not sent to {topic}: {reason}", file=sys.stderr)
        return EXIT_NOT_CONNECTED
    finally:
        await producer.stop()
    print(
        f"label {verdict} for {transaction_id} (user {user_id}) on {topic}"
        f"[{metadata.partition}]@{metadata.offset}"
    )
    return 0
