"""``fraudstream replay-dlq``: each dead letter back to its own topic, never an altered copy."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from fraudstream.cli import replay_dlq as replay_module
from fraudstream.cli.replay_dlq import ReplayTally, Skip, replay_target
from fraudstream.core.records import DeadLetterReason, Rejection, Source, dead_letter

INPUT, LABELS = "transactions-input", "fraud-labels"
WRITTEN = datetime(2024, 12, 4, tzinfo=timezone.utc)
LABEL = b'{"transactionId": "t1", "label": "fraud"}'
CARD_USER = b'{"userId": "4111111111111111", "amount": -5, "timestamp": "2024-12-04T15:00:00Z"}'


def letter(
    raw: bytes, topic: str = INPUT, reason: DeadLetterReason = DeadLetterReason.INVALID_FIELD
) -> dict[str, Any]:
    """A dead letter as the worker writes it for ``raw`` read from ``topic``."""
    record = dead_letter(raw, b"k", Source(topic, 1, 7), Rejection(reason, "bad"), WRITTEN)
    parsed: dict[str, Any] = orjson.loads(record)
    return parsed


def tally() -> ReplayTally:
    return ReplayTally(INPUT, LABELS)


def test_a_label_goes_back_to_the_labels_topic_and_a_transaction_to_the_input() -> None:
    label = letter(LABEL, LABELS, DeadLetterReason.UNKNOWN_TRANSACTION)
    assert replay_target(label, set(), tally()) == (LABELS, LABEL)
    assert replay_target(letter(b"oops"), set(), tally()) == (INPUT, b"oops")


def test_a_dead_letter_from_another_topic_is_skipped_and_named() -> None:
    foreign = letter(b"oops", "old-input")
    counts = tally()
    assert replay_target(foreign, set(), counts) is Skip.FOREIGN
    counts.skip(Skip.FOREIGN, foreign)
    summary = counts.summary(dry_run=False)
    assert summary.startswith(f"re-sent 0 dead letters to {INPUT}; skipped 1")
    assert "1 skipped: from a topic that is neither the input" in summary
    assert "old-input[1]@7" in summary


def test_a_masked_payload_is_never_re_sent_and_the_summary_says_why() -> None:
    masked = letter(CARD_USER)
    assert masked["masked"] is True and "************1111" in masked["payload"]
    counts = tally()
    assert replay_target(masked, set(), counts) is Skip.MASKED
    counts.skip(Skip.MASKED, masked)
    counts.sent[INPUT] += 2
    counts.sent[LABELS] += 1
    summary = counts.summary(dry_run=True)
    assert summary.splitlines()[0] == (
        f"would re-send 3 dead letters to {LABELS} (1), {INPUT} (2); skipped 1"
    )
    assert "1 skipped: their payload held card numbers, masked" in summary
    assert f"{INPUT}[1]@7" in summary


def test_an_older_dead_letter_without_the_masked_field_is_replayed_as_before() -> None:
    older = letter(b'{"userId": "u1", "amount": -5}')
    del older["masked"]
    assert replay_target(older, set(), tally()) == (INPUT, b'{"userId": "u1", "amount": -5}')


def test_truncated_and_unasked_dead_letters_are_skipped() -> None:
    oversized = letter(b"a" * 5000, reason=DeadLetterReason.OVERSIZED)
    assert replay_target(oversized, set(), tally()) is Skip.TRUNCATED
    assert replay_target(letter(b"oops"), {"invalid_json"}, tally()) is Skip.NOT_ASKED


class FakeConsumer:
    """The dead-letter topic: one batch of messages, then nothing."""

    def __init__(self, *topics: str, **_: Any) -> None:
        self.batches: list[dict[str, list[SimpleNamespace]]] = [{"dlq-0": MESSAGES}]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def getmany(self, timeout_ms: int) -> dict[str, list[SimpleNamespace]]:
        if self.batches:
            return self.batches.pop()
        await asyncio.sleep(0.01)
        return {}


class FakeProducer:
    """Records what would go to Kafka."""

    sent: list[tuple[str, bytes, bytes | None]] = []

    def __init__(self, **_: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        FakeProducer.sent.append((topic, value, key))


MESSAGES = [
    SimpleNamespace(key=b"k1", value=orjson.dumps(letter(b"oops"))),
    SimpleNamespace(
        key=b"k2",
        value=orjson.dumps(letter(LABEL, LABELS, DeadLetterReason.UNKNOWN_TRANSACTION)),
    ),
    SimpleNamespace(key=b"k3", value=orjson.dumps(letter(CARD_USER))),
]


def test_the_command_re_sends_each_to_its_topic_and_skips_the_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("FRAUDSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(replay_module, "AIOKafkaConsumer", FakeConsumer)
    monkeypatch.setattr(replay_module, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(FakeProducer, "sent", [])
    assert asyncio.run(replay_module.replay_dlq(set(), idle_timeout=0.1, dry_run=False)) == 0
    assert FakeProducer.sent == [(INPUT, b"oops", b"k1"), (LABELS, LABEL, b"k2")]
    err = capsys.readouterr().err
    assert f"re-sent 2 dead letters to {LABELS} (1), {INPUT} (1); skipped 1" in err
    assert "1 skipped: their payload held card numbers, masked" in err
