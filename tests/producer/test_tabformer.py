"""The TabFormer-shaped stream: a sixth labeled stream, with frauds about ten times rarer.

The tolerances hold for any seed at the default size (1,000 users, 70 days): over seeds 1-20
the fraud share was 0.14-0.28 % (mean 0.20 %), on 29-59 cards, about ten frauds a card.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from producer.records import NORMAL_SCENARIO, LabeledTransaction
from producer.tabformer import (
    ABROAD,
    CHANNELS,
    CLONED_FAR,
    CLONED_NEAR,
    ONLINE,
    STATES,
    SWIPE,
    TABFORMER_SCENARIOS,
    TabformerParameters,
    TabformerSimulator,
)
from tests.support.simulators import assert_seeded_stream

SMALL = TabformerParameters(users=60, days=20, seed=3)


@pytest.fixture(scope="module")
def records() -> list[LabeledTransaction]:
    return list(TabformerSimulator(TabformerParameters(seed=3)))


def test_the_same_seed_gives_the_same_stream_in_event_time_order() -> None:
    assert_seeded_stream(TabformerSimulator, SMALL, other_seed=4)


def test_payments_carry_an_mcc_a_channel_and_a_place_unless_online(
    records: list[LabeledTransaction],
) -> None:
    assert {record.channel for record in records} == set(CHANNELS)
    for record in records[:5000]:
        assert record.category is not None and record.category.isdigit()
        assert (record.country is None) == (record.channel == ONLINE)
        assert record.country is None or record.country in STATES + ABROAD


def test_frauds_are_rare_and_come_in_episodes_on_a_few_cards(
    records: list[LabeledTransaction],
) -> None:
    frauds = [record for record in records if record.is_fraud]
    assert 0.001 <= len(frauds) / len(records) <= 0.004
    assert {record.scenario for record in frauds} == set(TABFORMER_SCENARIOS)
    per_user: defaultdict[str, list[LabeledTransaction]] = defaultdict(list)
    for record in frauds:
        per_user[record.user_id].append(record)
    assert len(frauds) / len(per_user) >= 5, "episodes, not scattered payments"
    for episode in per_user.values():
        assert len({record.scenario for record in episode}) == 1
        days = (episode[-1].timestamp_ms - episode[0].timestamp_ms) / 86_400_000
        assert days <= 11


def test_a_fraud_is_at_a_merchant_new_to_the_card_and_above_its_usual_amounts(
    records: list[LabeledTransaction],
) -> None:
    seen: defaultdict[str, set[str | None]] = defaultdict(set)
    spent: defaultdict[str, list[float]] = defaultdict(list)
    new = above = frauds = 0
    for record in records:
        if record.is_fraud:
            frauds += 1
            new += record.merchant_id not in seen[record.user_id]
            usual = sorted(spent[record.user_id])
            above += bool(usual) and record.amount > usual[len(usual) // 2]
            assert record.scenario in TABFORMER_SCENARIOS
            if record.scenario in (CLONED_FAR, CLONED_NEAR):
                assert record.channel == SWIPE
            else:
                assert record.channel == ONLINE
        else:
            assert record.scenario == NORMAL_SCENARIO
            spent[record.user_id].append(record.amount)
        seen[record.user_id].add(record.merchant_id)
    assert new == frauds
    assert above / frauds >= 0.8, "about twice the user's usual amounts, not ten times"
