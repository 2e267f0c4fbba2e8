"""BatchHandler, the worker's loop body, with fakes for everything around the core."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, NoReturn
from unittest import mock

import orjson
import pytest

from fraudstream.core.behaviour import UserHistory
from fraudstream.core.detector import Detector, DetectorConfig
from fraudstream.core.model import HSTParams
from fraudstream.core.pending import DAY, PendingEntry, PendingStore
from fraudstream.core.records import Transaction
from fraudstream.core.rule_definitions import RuleSet, definition_from_json, seed_definitions
from fraudstream.core.segments import segment_key
from fraudstream.core.supervised import CalibrationParams, ClassifierParams
from fraudstream.worker import handler as handler_module
from fraudstream.worker.handler import BatchHandler, BatchOffsets
from fraudstream.worker.state import StateChanges, WorkerState
from fraudstream.worker.stats import WorkerStats

CONFIG = DetectorConfig(hst=HSTParams(window_size=50), warmup=50, score_quantile=None)
T_RULES = datetime(2024, 12, 1, tzinfo=timezone.utc)
NOW = 1_733_324_400.0  # 2024-12-04T15:00:00Z
LABELS = "fraud-labels"


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
class FakeOutbox:
    alerts: list[tuple[bytes, dict]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, dict]] = field(default_factory=list)
    decisions: list[tuple[bytes, dict]] = field(default_factory=list)
    shadow_hits: list[tuple[bytes, dict]] = field(default_factory=list)
    sends_decisions: bool = True

    async def send_alert(self, key: bytes, value: bytes, *, partition: int) -> None:
        self.alerts.append((key, orjson.loads(value)))

    async def send_dead_letter(self, key: bytes | None, value: bytes, *, partition: int) -> None:
        self.dead_letters.append((key, orjson.loads(value)))

    async def send_decision(self, key: bytes, value: bytes, *, partition: int) -> None:
        self.decisions.append((key, orjson.loads(value)))

    async def send_shadow_hit(self, key: bytes, value: bytes, *, partition: int) -> None:
        self.shadow_hits.append((key, orjson.loads(value)))


class StateNotSaved(Exception):
    """Stands in for the worker's exit when the changelog write fails."""


def not_saved() -> NoReturn:
    raise StateNotSaved


@dataclass
class Rig:
    handler: BatchHandler
    state: WorkerState
    outbox: FakeOutbox
    stats: WorkerStats
    flushed: list[StateChanges]

    def run(self, *messages: FakeMessage) -> None:
        asyncio.run(self.handler.handle([FakeEvent(m) for m in messages]))

    @property
    def profiles(self) -> dict[str, bytes]:
        return self.state.profiles  # type: ignore[return-value]


def rig(fail_flush: bool = False, detector: Detector | None = None) -> Rig:
    outbox, stats, flushed = FakeOutbox(), WorkerStats(), []
    pending = PendingStore({}, horizon=7 * DAY, late_window=DAY, max_entries=100)
    state = WorkerState({}, pending, {}, partitions=4)

    async def flush(changes: StateChanges, offsets: BatchOffsets) -> None:
        if not changes:
            return  # as the at-least-once worker: nothing to write
        if fail_flush:
            raise ConnectionError("changelog unreachable")
        flushed.append(changes)

    handler = BatchHandler(
        detector or Detector(CONFIG),
        state,
        stats,
        outbox,
        flush,
        not_saved,
        labels_topic=LABELS,
        clock=lambda: NOW,
    )
    return Rig(handler, state, outbox, stats, flushed)


def tx(offset: int, user: str = "u1", amount: float = 40.0, **extra: object) -> FakeMessage:
    doc = {"userId": user, "amount": amount, "timestamp": "2024-12-04T14:00:00Z", **extra}
    doc.setdefault("transactionId", f"t{offset}")
    return FakeMessage(orjson.dumps(doc), user.encode(), offset)


def test_a_transaction_over_the_threshold_is_alerted_under_its_user_key() -> None:
    r = rig()
    r.run(tx(0, amount=15000))
    [(key, alert)] = r.outbox.alerts
    assert key == b"u1" and alert["transactionId"] == "t0"
    assert alert["reasons"] == [
        {
            "type": "rule",
            "name": "amount_threshold",
            "threshold": 10000.0,
            "rule": "amount_threshold",
            "version": 1,
        }
    ]
    assert (r.stats.alerts_out, r.stats.alerts_by_reason["amount_threshold"]) == (1, 1)


def test_a_batch_writes_each_users_profile_once() -> None:
    r = rig()
    r.run(tx(0), tx(1), tx(2, user="u2"))
    [changes] = r.flushed
    assert len(changes.profiles) == 2 and len(changes.pending) == 3
    assert UserHistory.decode(r.profiles["u1"]).n == 2
    assert r.stats.batches == 1 and r.stats.transactions_in == 3


def test_a_users_transactions_in_one_batch_are_decided_in_their_order() -> None:
    r = rig()
    later = {"timestamp": "2024-12-04T14:05:00Z"}, {"timestamp": "2024-12-04T14:10:00Z"}
    r.run(
        tx(0),
        tx(1, user="u2"),
        tx(2, amount=15000, **later[0]),
        tx(3, user="u2"),
        tx(4, **later[1]),
    )
    history = UserHistory.decode(r.profiles["u1"])
    # all three applied, in their order (the alerted one kept out of the habit)
    assert history.recent_amounts == [40.0, 15000.0, 40.0] and history.n + history.suspicious == 3
    # u1's three transactions went out in the order they came (rounds keep each user's order)
    u1 = [d["transactionId"] for key, d in r.outbox.decisions if key == b"u1"]
    assert u1 == ["t0", "t2", "t4"]
    assert [a["transactionId"] for _, a in r.outbox.alerts] == ["t2"]


def test_the_position_is_the_last_offset_read_whatever_the_rounds_and_dead_letters() -> None:
    r = rig()
    # rounds decide u1@0 and u2@2 before u1@1; the last message read is a dead letter
    r.run(tx(0), tx(1), tx(2, user="u2"), FakeMessage(b"not json", b"junk", 3))
    assert r.stats.positions == {0: 3}  # what the consumer lag is measured from


def test_a_label_in_a_batch_comes_after_the_transactions_before_it() -> None:
    r = rig()
    r.run(at(0, 0.0), label(0, "t0"), at(1, 0.1))
    # t0 was decided (and pending) before its label arrived: the label resolved it
    assert r.stats.labels_by_verdict == {"fraud": 1}
    assert r.handler.detector.classifier.frauds == 1
    assert r.outbox.dead_letters == []


def test_bad_input_goes_to_the_dead_letter_topic_with_its_reason_and_the_batch_goes_on() -> None:
    r = rig()
    r.run(FakeMessage(b"{not json", b"k", 0), tx(1))
    [(key, record)] = r.outbox.dead_letters
    assert key == b"k" and record["reason"] == "invalid_json"
    assert record["source"] == {"topic": "transactions-input", "partition": 0, "offset": 0}
    assert r.stats.dlq_by_reason == {"invalid_json": 1} and r.stats.transactions_in == 1


def test_a_message_whose_processing_raises_is_parked_as_processing_error() -> None:
    r = rig()
    r.profiles["u1"] = b"\x00corrupt"  # decoding this profile raises
    r.run(tx(0), tx(1, user="u2"))
    [(_, record)] = r.outbox.dead_letters
    assert record["reason"] == "processing_error"
    assert r.stats.transactions_in == 1  # u2 was still processed


@pytest.mark.parametrize("stage", ["features", "decide", "keep"])
def test_a_transaction_whose_decision_raises_is_parked_and_its_round_goes_on(
    stage: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whether its features, its decision or the state it changed raises, one transaction is
    parked as ``processing_error`` and the other users of its round are still decided, in
    order, and kept; nothing of the failed one is kept."""
    r = rig()
    owner = r.handler if stage == "keep" else r.handler.detector
    original = getattr(owner, stage)

    def failing(first: object, *args: object, **kwargs: object) -> object:
        tx = getattr(first, "tx", first)  # decide gets a RoundItem, the others the transaction
        assert isinstance(tx, Transaction)
        if tx.user_id == "bad":
            raise RuntimeError(f"{stage} failed")
        return original(first, *args, **kwargs)

    monkeypatch.setattr(owner, stage, failing)
    r.run(tx(0), tx(1, user="bad"), tx(2, user="u3"))  # one round: three distinct users
    [(key, record)] = r.outbox.dead_letters
    assert (key, record["reason"], record["source"]["offset"]) == (b"bad", "processing_error", 1)
    assert record["error"] == f"RuntimeError: {stage} failed"
    # the operator's log carries the failure's own traceback, though it is logged after the round
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.exc_info is not None and logged.exc_info[1] is not None
    assert str(logged.exc_info[1]) == f"{stage} failed" and "failing" in caplog.text
    assert [d["transactionId"] for _, d in r.outbox.decisions] == ["t0", "t2"]
    assert sorted(r.profiles) == ["u1", "u3"] and r.stats.transactions_in == 2
    [changes] = r.flushed
    assert len(changes.profiles) == 2 and len(changes.pending) == 2  # t0's and t2's features
    assert r.stats.positions == {0: 2}


def test_a_redelivered_message_does_not_change_the_profile_again() -> None:
    r = rig()
    r.run(tx(0), tx(1))
    r.run(tx(1))  # the same offset again, as after a crash before the commit
    assert UserHistory.decode(r.profiles["u1"]).n == 2
    assert r.stats.redelivered == 1


def test_a_transaction_sent_again_is_decided_once_and_counted_as_a_duplicate() -> None:
    """A producer's retry puts a second copy of a payment on the topic, at a new offset: the
    copy is not a second payment at the same instant (a burst), so it is not decided again."""
    r = rig()
    first = tx(0, amount=15000)
    copy_in_batch = tx(1, amount=15000, transactionId="t0")
    r.run(first, copy_in_batch, tx(2))
    r.run(tx(3, amount=15000, transactionId="t0"))  # and one a batch later
    assert [alert["transactionId"] for _, alert in r.outbox.alerts] == ["t0"]
    assert r.stats.duplicates == 2 and r.stats.transactions_in == 2
    assert r.stats.messages_in == 4  # read, all of them
    assert UserHistory.decode(r.profiles["u1"]).n == 1  # t2 (t0 alerted: never learned)
    r.run(tx(0, amount=15000))  # the first copy's own offset again: a redelivery, as before
    assert (r.stats.redelivered, r.stats.duplicates) == (1, 2)
    r.run(tx(3, amount=15000, transactionId="t0"))  # the newest copy again, after a rebalance
    assert (r.stats.redelivered, r.stats.duplicates) == (2, 2)  # a redelivery, not a new copy
    assert UserHistory.decode(r.profiles["u1"]).n == 1
    r.run(tx(4, user="u2", transactionId="t0"))  # ids are the user's own
    assert r.stats.duplicates == 2 and r.stats.transactions_in == 5


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


def label(
    offset: int, tx_id: str, verdict: str = "fraud", user: str = "u1", **extra: object
) -> FakeMessage:
    doc = {"transactionId": tx_id, "userId": user, "label": verdict, "source": "chargeback"}
    return FakeMessage(orjson.dumps({**doc, **extra}), user.encode(), offset, topic=LABELS)


def at(
    offset: int, day: float, amount: float = 40.0, merchant: str = "T1", user: str = "u1"
) -> FakeMessage:
    """A transaction ``day`` days into the stream (event time)."""
    doc = {
        "transactionId": f"t{offset}",
        "userId": user,
        "amount": amount,
        "timestamp": 1_700_000_000 + day * DAY,
        "merchantId": merchant,
    }
    return FakeMessage(orjson.dumps(doc), user.encode(), offset)


def test_a_fraud_label_teaches_the_classifier_and_raises_the_merchants_risk() -> None:
    r = rig()
    r.run(at(0, 0.0), at(1, 0.1, merchant="T2"))
    before = r.state.merchant("T1")
    assert before is not None and before.fraud_30d == 0
    r.run(label(0, "t0"))
    assert r.handler.detector.classifier.frauds == 1
    after = r.state.merchant("T1")
    assert after is not None and after.fraud_30d == 1.0 and after.resolved_30d == 1.0
    assert r.stats.labels_by_verdict == {"fraud": 1}
    assert len(r.state.pending) == 1  # t1 still waits for its label


def test_a_merchant_counts_a_cards_frauds_once_and_the_classifier_learns_every_one() -> None:
    """A card tested four times at a shop is one stolen card, not four signs of a skimmed shop;
    a second card's fraud there is new evidence. The amount segment counts payments."""
    r = rig()
    r.run(*(at(i, i / 1440, amount=1.0) for i in range(4)), at(4, 0.01, user="u2"))
    r.run(*(label(10 + i, f"t{i}") for i in range(4)))
    shop = r.state.merchant("T1")
    assert shop is not None and (shop.fraud_30d, shop.resolved_30d) == pytest.approx(
        (1.0, 1.0), rel=1e-3
    )
    assert r.handler.detector.classifier.frauds == 4
    tiny = r.state.segment(segment_key(None, None, 1.0))
    assert tiny is not None and tiny.fraud_30d == pytest.approx(4.0, rel=1e-3)
    r.run(label(20, "t4", user="u2"))
    shop = r.state.merchant("T1")
    assert shop is not None and shop.fraud_30d == pytest.approx(2.0, rel=1e-3)


def test_merchants_and_segments_read_amounts_in_the_detectors_unit() -> None:
    """A stream in cents shares what the same stream in its own unit shares: the merchant's
    amounts and the amount segment are those of the amount over the unit."""
    r = rig(detector=Detector(replace(CONFIG, amount_unit=100.0)))
    r.run(at(0, 0.0, amount=30_000.0))
    r.run(label(1, "t0"))
    shop = r.state.merchant("T1")
    assert shop is not None and shop.mu_log == pytest.approx(math.log1p(300.0))
    assert r.state.segment(segment_key(None, None, 300.0)) is not None
    assert r.state.segment(segment_key(None, None, 30_000.0)) is None


def test_the_amount_unit_is_decided_from_the_whole_first_batch_before_its_first_round() -> None:
    """A first batch of 100 payments in cents by 60 users: its first round holds 60, under the
    100 amounts the unit is chosen from, yet no payment of it is read in unit 1 (where 15,000
    cents would pass the default amount line of 10,000)."""
    r = rig()
    big = tx(0, user="u0", amount=15_000.0, timestamp="2024-12-04T13:00:00Z")
    messages = [
        tx(i, user=f"u{i % 60}", amount=1_500.0 + i, timestamp=f"2024-12-04T14:{i % 60:02d}:00Z")
        for i in range(1, 100)
    ]
    r.run(big, *messages)
    assert r.handler.detector.unit.value == 100.0
    assert r.outbox.alerts == []  # 150.00 in the stream's unit: far under the line


def test_labels_teach_the_amount_segment_its_risk_and_the_classifier_sees_it() -> None:
    r = rig()
    r.run(at(0, 0.0, amount=300.0), at(1, 0.1, amount=40.0))
    r.run(label(0, "t0"))
    risky = r.state.segment(segment_key(None, None, 300.0))
    assert risky is not None and (risky.fraud_30d, risky.resolved_30d) == (1.0, 1.0)
    assert r.state.segment(segment_key(None, None, 40.0)) is None  # t1 still waits for its label
    r.run(at(2, 8.0, amount=40.0))  # t1 matures as legit
    ordinary = r.state.segment(segment_key(None, None, 40.0))
    assert ordinary is not None and (ordinary.fraud_30d, ordinary.resolved_30d) == (0.0, 1.0)
    seen = r.handler.shared_stats_of(Transaction("t9", "u1", 300.0, datetime.now(timezone.utc)))
    assert seen.segment is not None and seen.segment.fraud_30d > 0


def test_an_unlabeled_transaction_matures_as_legit_after_the_horizon() -> None:
    r = rig()
    r.run(at(0, 0.0))
    r.run(at(1, 6.9))
    assert r.handler.detector.classifier.legit == 0
    r.run(at(2, 7.01))
    assert r.handler.detector.classifier.legit == 1 and r.stats.matured == 1
    merchant = r.state.merchant("T1")
    assert merchant is not None and merchant.resolved_30d > 0 and merchant.fraud_30d == 0


def test_a_worker_whose_labels_never_come_says_once_that_they_could_be_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler_module, "NO_LABELS_HINT_MATURED", 2)
    r = rig()
    with caplog.at_level(logging.WARNING, logger="fraudstream"):
        r.run(at(0, 0.0), at(1, 0.5))
        r.run(at(2, 7.6))  # t0 and t1 mature unlabelled
        r.run(at(3, 7.7), at(4, 15.0))
    hints = [m for m in caplog.messages if "FRAUDSTREAM_LABELS_ENABLED=false" in m]
    assert len(hints) == 1 and hints[0].startswith("2 transactions matured")


def test_no_labels_hint_once_a_label_came() -> None:
    r = rig()
    r.run(at(0, 0.0))
    r.run(label(0, "t0"))
    r.handler.stats.matured = handler_module.NO_LABELS_HINT_MATURED
    r.handler.hint_no_labels()
    assert not r.handler.hinted_no_labels


def test_a_fraud_label_just_after_maturity_corrects_what_was_learned() -> None:
    r = rig()
    r.run(at(0, 0.0), at(1, 7.5))  # t0 matured as legit
    r.run(label(0, "t0"))
    assert r.handler.detector.classifier.frauds == 1
    assert r.stats.labels_corrected == 1
    merchant = r.state.merchant("T1")
    assert merchant is not None and merchant.fraud_30d == pytest.approx(1.0, abs=0.2)


def test_the_detector_learns_how_late_each_fraud_label_came_and_what_matured_unlabelled() -> None:
    r = rig()
    detector = r.handler.detector
    with mock.patch.object(detector, "learn_label", wraps=detector.learn_label) as learn:
        r.run(at(0, 0.0), at(1, 1.0), at(2, 2.5))
        r.run(label(0, "t0"))  # the clock is at day 2.5: 2.5 days late
        r.run(at(3, 8.6))  # t1 matures as legit (the horizon is 7 days), t2 not yet
    start = 1_700_000_000
    assert [(c.args[1:3], c.kwargs) for c in learn.call_args_list] == [
        ((True, start), {"matured": False, "delay": pytest.approx(2.5 * DAY)}),
        ((False, start + DAY), {"matured": True, "delay": None}),
    ]


def test_a_label_past_the_late_window_goes_to_the_dead_letter_topic() -> None:
    r = rig()
    r.run(at(0, 0.0), at(1, 8.5))  # horizon 7 d + late window 1 d passed
    r.run(label(0, "t0"))
    [(key, record)] = r.outbox.dead_letters
    assert key == b"u1" and record["reason"] == "unknown_transaction"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"userId": "u1", "label": "fraud"}',
        b'{"transactionId": "t0", "userId": "u1", "label": "perhaps"}',
        b"[1, 2]",
    ],
)
def test_a_malformed_label_lands_on_the_dead_letter_topic_and_the_stream_goes_on(
    raw: bytes,
) -> None:
    r = rig()
    r.run(at(0, 0.0), FakeMessage(raw, b"u1", 0, topic=LABELS), at(1, 0.1))
    [(_, record)] = r.outbox.dead_letters
    assert record["reason"] == "invalid_label"
    assert record["source"]["topic"] == LABELS
    assert r.stats.transactions_in == 2


def test_a_label_for_a_transaction_never_seen_is_dead_lettered() -> None:
    r = rig()
    r.run(label(0, "nobody-saw-this"))
    [(_, record)] = r.outbox.dead_letters
    assert record["reason"] == "unknown_transaction"
    assert "nobody-saw-this" in record["error"]


def test_a_label_whose_handling_raises_is_parked_and_the_batch_goes_on() -> None:
    r = rig()
    r.run(at(0, 0.0))

    def failing(*args: Any) -> None:
        raise RuntimeError("the classifier could not learn")

    r.handler.learn = failing  # type: ignore[method-assign]
    r.run(label(0, "t0"), at(1, 0.1))
    [(key, record)] = r.outbox.dead_letters
    assert (key, record["reason"], record["source"]["topic"]) == (b"u1", "processing_error", LABELS)
    assert [d["transactionId"] for _, d in r.outbox.decisions] == ["t0", "t1"]
    assert r.stats.positions == {0: 1}


def stamped(day: float) -> str:
    """``labeledAt`` ``day`` days into the stream, as the labels topic carries it."""
    return datetime.fromtimestamp(1_700_000_000 + day * DAY, timezone.utc).isoformat()


def test_a_label_that_overtakes_its_transaction_waits_for_it() -> None:
    # The labels topic is read ahead of a backlog of transactions: the label of t1, made on
    # day 7, arrives while this worker's transactions are still on day 0.
    r = rig()
    r.run(at(0, 0.0), label(0, "t1", labeledAt=stamped(7.0)))
    assert r.outbox.dead_letters == []
    assert r.state.pending.held_size() == 1 and len(r.state.pending) == 1
    r.run(at(1, 0.5))  # the transaction meets its label, which waits for day 7 with it
    assert r.state.pending.held_size() == 0 and len(r.state.pending) == 2
    assert r.handler.detector.classifier.frauds == 0  # not learned before it was made
    r.run(at(2, 6.9))
    assert r.handler.detector.classifier.frauds == 0
    r.run(at(3, 7.0))  # day 7: t0 matures as legit and t1's label is learned, as live
    assert r.handler.detector.classifier.frauds == 1
    assert r.handler.detector.classifier.legit == 1
    assert r.stats.labels_by_verdict == {"fraud": 1}
    merchant = r.state.merchant("T1")
    assert merchant is not None and merchant.fraud_30d == 1.0


def test_a_label_that_waited_for_its_transaction_tells_how_late_it_came() -> None:
    r = rig()
    detector = r.handler.detector
    with mock.patch.object(detector, "learn_label", wraps=detector.learn_label) as learn:
        r.run(at(0, 0.0), label(0, "t1", labeledAt=stamped(7.0)))
        r.run(at(1, 0.5))  # meets its label, made on day 7: 6.5 days after it
        r.run(at(2, 7.0))
    delays = {c.args[2]: c.kwargs["delay"] for c in learn.call_args_list if c.args[1]}
    assert delays == {1_700_000_000 + 0.5 * DAY: pytest.approx(6.5 * DAY)}


def test_a_known_label_made_after_maturity_corrects_what_was_learned() -> None:
    r = rig()
    r.run(label(0, "t0", labeledAt=stamped(7.5)), at(0, 0.0))
    r.run(at(1, 7.2))  # t0 matured as legit
    assert r.handler.detector.classifier.legit == 1
    r.run(at(2, 7.6))
    assert r.handler.detector.classifier.frauds == 1 and r.stats.labels_corrected == 1


def test_a_held_label_whose_transaction_never_comes_is_dead_lettered_once_time_passes_it() -> None:
    r = rig()
    r.run(at(0, 0.0), label(5, "t-never", labeledAt=stamped(2.0)))
    r.run(at(1, 1.9))
    assert r.outbox.dead_letters == []
    r.run(at(2, 2.1))
    [(key, record)] = r.outbox.dead_letters
    assert key == b"u1" and record["reason"] == "unknown_transaction"
    assert record["source"] == {"topic": LABELS, "partition": 0, "offset": 5}
    assert orjson.loads(record["payload"])["transactionId"] == "t-never"
    assert r.state.pending.counts.held_expired == 1


def test_held_labels_are_bounded_and_the_oldest_is_dead_lettered() -> None:
    r = rig()
    r.handler.state.pending.max_held = 2
    r.run(*(label(i, f"t{100 + i}", labeledAt=stamped(1.0 + i)) for i in range(3)))
    [(_, record)] = r.outbox.dead_letters
    assert orjson.loads(record["payload"])["transactionId"] == "t100"
    assert r.state.pending.held_size() == 2


def test_held_labels_survive_a_restart_through_the_changelog() -> None:
    r = rig()
    r.run(label(0, "t1", labeledAt=stamped(7.0)))
    [changes] = r.flushed
    assert len(changes.pending) == 1  # the held label went to the changelog
    recovered = dict(r.state.pending.data)  # what recovery reads back into a new store
    store = PendingStore(recovered, horizon=7 * DAY, late_window=DAY, max_entries=100)
    assert store.held_size() == 1 and len(store) == 0
    entry = PendingEntry(1_700_000_000.0, 0, "T1", (0.1,))
    assert store.add("t1", entry) == []
    assert store.held_size() == 0 and len(store) == 1
    [resolution] = store.advance(1_700_000_000.0 + 7 * DAY)
    assert resolution.fraud and resolution.by_label


def test_the_pending_store_is_bounded_and_the_oldest_mature_early() -> None:
    r = rig()
    r.run(*(at(i, i / 1000) for i in range(105)))
    assert len(r.state.pending) == 100
    assert r.state.pending.counts.forced == 5
    assert r.handler.detector.classifier.legit == 5


def test_once_it_has_learned_enough_labels_the_classifier_gives_its_own_reason() -> None:
    config = DetectorConfig(
        hst=HSTParams(window_size=50),
        warmup=50,
        score_quantile=None,
        classifier=ClassifierParams(min_frauds=20, min_legit=100),
        calibration=CalibrationParams(initial=0.5),
    )
    r = rig(detector=Detector(config))
    offset = 0
    # Every transaction at terminal "BAD" is fraud and reported; the others mature as legit.
    for day in range(30):
        batch = []
        for i in range(12):
            merchant = "BAD" if i < 2 else f"T{i}"
            batch.append(at(offset, day + i / 24, merchant=merchant))
            offset += 1
        r.run(*batch)
        r.run(*(label(0, f"t{m.offset}") for m in batch if b'"BAD"' in (m.value or b"")))
    assert r.handler.detector.classifier.ready
    r.outbox.alerts.clear()
    r.run(at(offset, 30.5, merchant="BAD"), at(offset + 1, 30.6, merchant="T5"))
    alerted = {a["transactionId"]: a for _, a in r.outbox.alerts}
    assert f"t{offset}" in alerted and f"t{offset + 1}" not in alerted
    reason = alerted[f"t{offset}"]["reasons"][-1]
    assert reason["type"] == "model" and reason["name"] == "fraud_classifier"
    assert reason["probability"] >= 0.5


def test_every_transaction_gets_a_decision_with_its_risk_and_parts() -> None:
    r = rig()
    r.run(tx(0, amount=15000), tx(1))
    [(_, flagged), (_, ordinary)] = r.outbox.decisions
    assert flagged["transactionId"] == "t0" and flagged["alert"] and flagged["risk"] == 1.0
    assert flagged["reasons"] == ["amount_threshold"] and flagged["parts"]["rules"] == 1.0
    assert not ordinary["alert"] and 0.0 <= ordinary["risk"] < 0.5


def test_without_a_decisions_topic_no_decision_is_sent_and_alerts_still_are() -> None:
    r = rig()
    r.outbox.sends_decisions = False
    r.run(tx(0, amount=15000), tx(1))
    assert r.outbox.decisions == [] and len(r.outbox.alerts) == 1


def test_without_a_labels_topic_nothing_waits_for_a_label() -> None:
    r = rig()
    r.handler.labels_topic = None
    r.run(at(0, 0.0), at(1, 9.0))
    assert len(r.state.pending) == 0 and r.handler.detector.classifier.legit == 0


def test_with_labels_disabled_merchants_are_not_counted_and_alerts_are_the_same() -> None:
    alerts = {}
    for enabled in (True, False):
        r = rig(detector=Detector(replace(CONFIG, labels_enabled=enabled)))
        r.handler.labels_topic = LABELS if enabled else None
        r.run(*(at(i, i / 24, merchant="M1") for i in range(6)), tx(6, amount=15000))
        alerts[enabled] = [a["transactionId"] for _, a in r.outbox.alerts]
        assert bool(r.state.merchants) is enabled  # counted only for the classifier's input
    assert alerts[True] == alerts[False] == ["t6"]


def test_a_shadow_rule_hit_is_published_and_counted_but_never_alerts() -> None:
    rules = RuleSet(seed_definitions(CONFIG, T_RULES))
    trial = definition_from_json(
        '{"id": "big-spend", "version": 2, "author": "ana", "reason": "try 500",'
        ' "mode": "shadow", "created_at": "2024-12-01T00:00:00Z",'
        ' "kind": {"type": "amount_threshold", "threshold": 500}}'
    )
    assert rules.apply(trial).accepted
    r = rig(detector=Detector(CONFIG, rules=rules))
    r.run(tx(0, amount=900.0), tx(1, amount=15000.0), tx(2, amount=40.0))
    assert [a["transactionId"] for _, a in r.outbox.alerts] == ["t1"]  # the active rule only
    hits = [(key, hit["transactionId"], hit["alerted"]) for key, hit in r.outbox.shadow_hits]
    assert hits == [(b"u1", "t0", False), (b"u1", "t1", True)]
    _, first = r.outbox.shadow_hits[0]
    assert (first["rule"], first["version"], first["mode"]) == ("big-spend", 2, "shadow")
    assert r.stats.shadow_hits_by_rule == {"big-spend": 2}
    assert "big-spend" not in r.stats.alerts_by_reason


def test_a_transaction_whose_features_cannot_be_kept_is_parked_unapplied_and_replays() -> None:
    """Parked after its profile was stored, the copy replayed from the dead-letter topic was
    skipped as a duplicate of one already applied, and its alert never went out."""
    r = rig()
    keep_features = r.handler.remember

    def failing(*args: Any) -> None:
        raise RuntimeError("pending store write failed")

    r.handler.remember = failing  # type: ignore[method-assign]
    r.run(tx(0, amount=15000))
    assert [d["reason"] for _, d in r.outbox.dead_letters] == ["processing_error"]
    assert "u1" not in r.profiles and r.stats.transactions_in == 0 and not r.outbox.alerts
    r.handler.remember = keep_features  # type: ignore[method-assign]
    r.run(tx(7, amount=15000, transactionId="t0"))  # the parked message, replayed
    assert len(r.outbox.alerts) == 1 and r.stats.duplicates == 0


def test_a_damaged_pending_value_neither_stops_the_batch_nor_parks_its_messages() -> None:
    r = rig()
    r.state.pending.data["old"] = b"\x00\x01\x02"  # a truncated changelog value
    r.run(tx(0), tx(1, user="u2"))
    assert not r.outbox.dead_letters and sorted(r.profiles) == ["u1", "u2"]
    assert len(r.flushed) == 1 and not len(r.state.changes)
    assert r.state.pending.counts.corrupt == 1
