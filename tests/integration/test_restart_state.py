"""State survives a restart: profiles from the changelog, the model from its checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from fraudstream.core.behaviour import UserHistory
from tests.conftest import Pipeline
from tests.integration.test_worker import SEED
from tests.support.kafka import read_records
from tests.support.records import wait_until

pytestmark = pytest.mark.integration

WINDOW = 50


def history(user: str, count: int) -> list[dict[str, object]]:
    """A steady spender: ~20 per purchase, two hours apart."""
    return [
        {
            "transactionId": f"{user}-h{i}",
            "userId": user,
            "amount": 18 + (i % 5),
            "timestamp": 1733320000 + 7200 * i,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_restarted_worker_keeps_profiles_and_scores_without_a_new_warm_up(
    pipeline_factory: Callable[..., Pipeline], store: str
) -> None:
    """On either profile store (RocksDB keeps them on disk; its reads and writes for a batch's
    several partitions must find each user's own)."""
    pipeline = pipeline_factory(
        FRAUDSTREAM_TABLE_STORE=store,
        FRAUDSTREAM_HST_WINDOW_SIZE=str(WINDOW),
        FRAUDSTREAM_MODEL_WARMUP="0",  # warm after one (small) window
        FRAUDSTREAM_SCORE_QUANTILE_MIN_SAMPLES="10",
        FRAUDSTREAM_MODEL_CHECKPOINT_INTERVAL="3600",  # only the shutdown checkpoint counts
    )
    first = pipeline.start_worker()
    others = [tx for u in range(6) for tx in history(f"other-{u}", 15)]  # 110 with mine
    mine = history("12345", 20)
    pipeline.send_json(others + mine)
    first.wait_processed(len(others) + len(mine))
    learned_before = first.stats()["model"]["learned"]
    evidence_before = first.stats()["scaleEvidence"]
    assert evidence_before["amounts"] > 0
    assert learned_before >= WINDOW
    assert first.stats()["amountUnit"] == 1.0  # 110 amounts of ~20: read as they are
    assert first.stats()["timestampStep"] == 3600  # all whole hours apart: an hour's step
    assert first.stop() == 0

    second = pipeline.start_worker()
    model = second.stats()["model"]
    assert model["learned"] == learned_before, "the model did not come back from its checkpoint"
    assert model["warmedUp"]
    assert second.stats()["amountUnit"] == 1.0, "the amount unit comes back with the model"
    assert second.stats()["timestampStep"] == 3600, "and the clock step"
    assert second.stats()["scaleEvidence"] == evidence_before, "and the stream's scale evidence"

    pipeline.send_json([{**SEED, "transactionId": "after-restart", "timestamp": 1733330000}])
    second.wait_processed(1)
    alerts = pipeline.read(
        pipeline.alerts_topic,
        until=lambda got: any(a["transactionId"] == "after-restart" for _, a in got),
    )
    alert = next(a for _, a in alerts if a["transactionId"] == "after-restart")
    # A fresh history would give the neutral 0; 15000 against a ~20 habit is far above it.
    assert alert["features"]["z_habit"] > 1.5, alert
    # A fresh model scores 0 until it has learned a whole window; the restored one scores now.
    assert alert["score"] > 0, alert


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_profile_changes_land_in_the_changelog_partition_of_their_transactions(
    pipeline_factory: Callable[..., Pipeline], store: str
) -> None:
    """Batches span partitions; each profile must go where recovery for its partition reads,
    and carry all of its user's transactions (RocksDB filed a batch's later reads under the
    last message's partition: profiles read back empty were written so)."""
    pipeline = pipeline_factory(FRAUDSTREAM_TABLE_STORE=store)
    worker = pipeline.start_worker()
    users = [f"user-{u}" for u in range(12)]
    per_user = 5
    pipeline.send_json([tx for user in users for tx in history(user, per_user)])
    worker.wait_processed(len(users) * per_user)

    inputs = read_records(pipeline.broker.bootstrap, pipeline.input_topic, len(users) * per_user)
    input_partition = {r.key.decode(): r.partition for r in inputs if r.key}
    assert len(set(input_partition.values())) > 1, "the users should spread over partitions"
    changelog = f"{pipeline.env['FRAUDSTREAM_APP_ID']}-user-profiles-changelog"
    latest: dict[str, tuple[int, UserHistory]] = {}
    for record in read_records(pipeline.broker.bootstrap, changelog, len(users)):
        user = orjson.loads(record.key or b"null")  # keys in the table's JSON codec
        latest[user] = (record.partition, UserHistory.decode(record.value))
    assert set(latest) == set(users)
    for user, (partition, stored) in latest.items():
        assert partition == input_partition[user], user
        assert stored.last_partition == partition
        assert stored.n == per_user


def test_a_worker_killed_after_choosing_the_amount_unit_reads_on_in_the_same_unit(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """Amounts in hundreds: the worker chooses unit 0.01 on its first batch and writes its
    checkpoint before committing anything learned in it, so kill -9 long before the periodic
    checkpoint still restarts in unit 0.01 (a fresh choice could differ: profiles in two units)."""
    pipeline = pipeline_factory(FRAUDSTREAM_MODEL_CHECKPOINT_INTERVAL="3600")
    first = pipeline.start_worker()
    hundreds = [
        {**tx, "amount": round(float(tx["amount"]) / 100, 4)}  # type: ignore[arg-type]
        for u in range(8)
        for tx in history(f"small-{u}", 15)
    ]
    pipeline.send_json(hundreds)
    first.wait_processed(len(hundreds))
    assert first.stats()["amountUnit"] == 0.01
    # every offset committed: the next worker gets nothing again to choose a unit from
    wait_until(lambda: pipeline.committed() == len(hundreds), timeout=30, what="offsets committed")
    first.kill()

    second = pipeline.start_worker()
    assert second.stats()["amountUnit"] == 0.01, "the unit did not survive kill -9"
