"""State survives a restart: profiles from the changelog, the model from its checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Pipeline
from tests.integration.test_worker import SEED

pytestmark = pytest.mark.integration

WINDOW = 50


def history(user: str, count: int) -> list[dict[str, object]]:
    """A steady spender: ~20 per purchase, a minute apart."""
    return [
        {
            "transactionId": f"{user}-h{i}",
            "userId": user,
            "amount": 18 + (i % 5),
            "timestamp": 1733320000 + 60 * i,
        }
        for i in range(count)
    ]


def test_restarted_worker_keeps_profiles_and_scores_without_a_new_warm_up(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(
        FRAUDSTREAM_HST_WINDOW_SIZE=str(WINDOW),
        FRAUDSTREAM_SCORE_QUANTILE_MIN_SAMPLES="10",
        FRAUDSTREAM_MODEL_CHECKPOINT_INTERVAL="3600",  # only the shutdown checkpoint counts
    )
    first = pipeline.start_worker()
    others = [tx for u in range(5) for tx in history(f"other-{u}", 15)]
    mine = history("12345", 20)
    pipeline.send_json(others + mine)
    first.wait_processed(len(others) + len(mine))
    learned_before = first.stats()["model"]["learned"]
    assert learned_before >= WINDOW
    assert first.stop() == 0

    second = pipeline.start_worker()
    model = second.stats()["model"]
    assert model["learned"] == learned_before, "the model did not come back from its checkpoint"
    assert model["warmedUp"]

    pipeline.send_json([{**SEED, "transactionId": "after-restart", "timestamp": 1733330000}])
    second.wait_processed(1)
    alerts = pipeline.read(
        pipeline.alerts_topic,
        until=lambda got: any(a["transactionId"] == "after-restart" for _, a in got),
    )
    alert = next(a for _, a in alerts if a["transactionId"] == "after-restart")
    # A fresh profile would give the neutral 0.5; 15000 against a ~20 habit is far above it.
    assert alert["features"]["amount_zscore"] > 0.95, alert
    # A fresh model scores 0 until it has learned a whole window; the restored one scores now.
    assert alert["score"] > 0, alert
