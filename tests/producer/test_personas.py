"""The persona stream: a third labeled stream, deterministic and in event-time order."""

from __future__ import annotations

from collections import Counter

import pytest

from producer.personas import (
    COMPROMISED_MERCHANT,
    PERSONA_SCENARIOS,
    PersonaParameters,
    PersonaSimulator,
)
from producer.records import NORMAL_SCENARIO, LabeledTransaction

SMALL = PersonaParameters(users=400, days=20, seed=3)


@pytest.fixture(scope="module")
def records() -> list[LabeledTransaction]:
    return list(PersonaSimulator(SMALL))


def test_the_same_seed_gives_the_same_stream_in_event_time_order(
    records: list[LabeledTransaction],
) -> None:
    assert records == list(PersonaSimulator(SMALL))
    times = [record.timestamp_ms for record in records]
    assert times == sorted(times)
    assert len({record.transaction_id for record in records}) == len(records)
    assert records != list(PersonaSimulator(PersonaParameters(users=400, days=20, seed=4)))


def test_every_fraud_scenario_occurs_and_fraud_stays_rare(
    records: list[LabeledTransaction],
) -> None:
    counts = Counter(record.scenario for record in records)
    assert set(counts) == {NORMAL_SCENARIO, *PERSONA_SCENARIOS}
    frauds = sum(n for scenario, n in counts.items() if scenario != NORMAL_SCENARIO)
    assert 0.005 < frauds / len(records) < 0.05
    assert all(record.is_fraud == (record.scenario != NORMAL_SCENARIO) for record in records)


def test_a_skimmed_merchant_takes_every_payment_of_its_window_as_fraud(
    records: list[LabeledTransaction],
) -> None:
    skimmed = [record for record in records if record.scenario == COMPROMISED_MERCHANT]
    merchant = Counter(record.merchant_id for record in skimmed).most_common(1)[0][0]
    window = [r.timestamp_ms for r in skimmed if r.merchant_id == merchant]
    inside = [
        r
        for r in records
        if r.merchant_id == merchant and min(window) <= r.timestamp_ms <= max(window)
    ]
    assert {r.scenario for r in inside} <= {COMPROMISED_MERCHANT, *PERSONA_SCENARIOS}


def test_messages_carry_place_category_and_channel_but_no_label(
    records: list[LabeledTransaction],
) -> None:
    doc = records[0].message()
    assert {"latitude", "longitude", "category", "channel", "country", "merchantId"} <= set(doc)
    assert "scenario" not in doc and "is_fraud" not in doc
    assert {record.channel for record in records} == {"online", "pos"}
