"""BatchHandler, the worker's loop body, with fakes for everything around the core."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import NoReturn

import orjson
import pytest

from fraudstream.core.detector import Detector, DetectorConfig
from fraudstream.core.features import UserProfile, decode_profile, encode_profile
from fraudstream.core.model import HSTParams
from fraudstream.worker.changelog import ChangelogBatch
from fraudstream.worker.handler import BatchHandler
from fraudstream.worker.stats import WorkerStats

CONFIG = DetectorConfig(hst=HSTParams(window_size=50), warmup=50, score_quantile=None)
NOW = 1_733_324_400.0  # 2024-12-04T15:00:00Z


@dataclass
class FakeMessage:
    value: bytes | None
    key: bytes | None
    offset: int
    partition: int = 0
    topic: str = "transactions-input"
    timestamp: float = NOW - 0.010


@dataclass
class FakeEvent:
    message: FakeMessage


@dataclass
class FakeProfiles:
    """Profiles in a dict, as the table would hold them (encoded bytes)."""

    data: dict[str, bytes] = field(default_factory=dict)

    def load(self, user_id: str) -> UserProfile:
        return decode_profile(self.data.get(user_id))

    def store(
        self, user_id: str, profile: UserProfile, partition: int, changes: ChangelogBatch
    ) -> None:
        value = encode_profile(profile)
        self.data[user_id] = value
        changes.put(partition, user_id.encode(), value)


@dataclass
class FakeOutbox:
    alerts: list[tuple[bytes, dict]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, dict]] = field(default_factory=list)

    async def send_alert(self, key: bytes, value: bytes) -> None:
        self.alerts.append((key, orjson.loads(value)))

    async def send_dead_letter(self, key: bytes | None, value: bytes) -> None:
        self.dead_letters.append((key, orjson.loads(value)))


class StateNotSaved(Exception):
    """Stands in for the worker's exit when the changelog write fails."""


def not_saved() -> NoReturn:
    raise StateNotSaved


@dataclass
class Rig:
    handler: BatchHandler
    profiles: FakeProfiles
    outbox: FakeOutbox
    stats: WorkerStats
    flushed: list[int]

    def run(self, *messages: FakeMessage) -> None:
        asyncio.run(self.handler.handle([FakeEvent(m) for m in messages]))


def rig(fail_flush: bool = False) -> Rig:
    profiles, outbox, stats, flushed = FakeProfiles(), FakeOutbox(), WorkerStats(), []

    async def flush(changes: ChangelogBatch) -> None:
        if fail_flush:
            raise ConnectionError("changelog unreachable")
        flushed.append(len(changes))

    handler = BatchHandler(
        Detector(CONFIG), profiles, stats, outbox, flush, not_saved, clock=lambda: NOW
    )
    return Rig(handler, profiles, outbox, stats, flushed)


def tx(offset: int, user: str = "u1", amount: float = 40.0, **extra: object) -> FakeMessage:
    doc = {"userId": user, "amount": amount, "timestamp": "2024-12-04T14:00:00Z", **extra}
    doc.setdefault("transactionId", f"t{offset}")
    return FakeMessage(orjson.dumps(doc), user.encode(), offset)


def test_a_transaction_over_the_threshold_is_alerted_under_its_user_key() -> None:
    r = rig()
    r.run(tx(0, amount=15000))
    [(key, alert)] = r.outbox.alerts
    assert key == b"u1" and alert["transactionId"] == "t0"
    assert alert["reasons"] == [{"type": "rule", "name": "amount_threshold", "threshold": 10000.0}]
    assert (r.stats.alerts_out, r.stats.alerts_by_reason["amount_threshold"]) == (1, 1)


def test_a_batch_writes_each_users_profile_once() -> None:
    r = rig()
    r.run(tx(0), tx(1), tx(2, user="u2"))
    assert r.flushed == [2]
    assert decode_profile(r.profiles.data["u1"]).count == 2
    assert r.stats.batches == 1 and r.stats.transactions_in == 3


def test_bad_input_goes_to_the_dead_letter_topic_with_its_reason_and_the_batch_goes_on() -> None:
    r = rig()
    r.run(FakeMessage(b"{not json", b"k", 0), tx(1))
    [(key, record)] = r.outbox.dead_letters
    assert key == b"k" and record["reason"] == "invalid_json"
    assert record["source"] == {"topic": "transactions-input", "partition": 0, "offset": 0}
    assert r.stats.dlq_by_reason == {"invalid_json": 1} and r.stats.transactions_in == 1


def test_a_message_whose_processing_raises_is_parked_as_processing_error() -> None:
    r = rig()
    r.profiles.data["u1"] = b"\x00corrupt"  # decoding this profile raises
    r.run(tx(0), tx(1, user="u2"))
    [(_, record)] = r.outbox.dead_letters
    assert record["reason"] == "processing_error"
    assert r.stats.transactions_in == 1  # u2 was still processed


def test_a_redelivered_message_does_not_change_the_profile_again() -> None:
    r = rig()
    r.run(tx(0), tx(1))
    r.run(tx(1))  # the same offset again, as after a crash before the commit
    assert decode_profile(r.profiles.data["u1"]).count == 2
    assert r.stats.redelivered == 1


def test_a_message_not_keyed_by_its_user_is_counted_as_misrouted() -> None:
    r = rig()
    message = tx(0)
    message.key = b"someone-else"
    r.run(message)
    assert r.stats.misrouted == 1


def test_a_failed_changelog_write_stops_before_the_offsets_are_acknowledged() -> None:
    r = rig(fail_flush=True)
    with pytest.raises(StateNotSaved):
        r.run(tx(0))


def test_latency_is_measured_from_the_message_timestamp() -> None:
    r = rig()
    r.run(tx(0))
    assert r.stats.latency_ms.total == 1
    assert r.stats.positions == {0: 0}
