"""What the demo reports beside the alerts: how many of them the generator's truth confirms."""

from __future__ import annotations

import pytest

from fraudstream.cli.demo import DEMO_WORKER_ENV, DemoCounts
from fraudstream.settings import Settings


def alert(transaction_id: str, *reasons: str) -> dict[str, object]:
    return {"transactionId": transaction_id, "reasons": [{"name": name} for name in reasons]}


def test_an_alert_counts_as_true_for_each_reason_only_when_its_transaction_was_fraud() -> None:
    counts = DemoCounts(fraud_ids={"tx-1", "tx-2"})
    counts.count_alert(alert("tx-1", "fraud_classifier", "half_space_trees"))
    counts.count_alert(alert("tx-3", "half_space_trees"))
    counts.count_alert(alert("tx-2", "amount_threshold"))
    assert (counts.alerts, counts.true_alerts) == (3, 2)
    assert counts.alerts_by_reason == {
        "half_space_trees": 2,
        "fraud_classifier": 1,
        "amount_threshold": 1,
    }
    assert counts.true_alerts_by_reason == {
        "half_space_trees": 1,
        "fraud_classifier": 1,
        "amount_threshold": 1,
    }


def test_the_demo_compresses_the_label_week_into_one_day_for_every_setting_that_counts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its labels come a day late: maturity, the late window and the classifier's calibration
    all look back one day, or the young classifier's first line can stay at 1 to the end."""
    for name, value in DEMO_WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    detection = Settings().detection
    assert detection.label_horizon_days == 1.0
    assert detection.label_late_window_days == 1.0
    assert detection.classifier_calibration_days == 1.0
