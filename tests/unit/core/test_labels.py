"""Parsing a message of the labels topic: a verdict on an earlier transaction, or a rejection."""

from __future__ import annotations

import orjson
import pytest

from fraudstream.core.labels import Label, Verdict, parse_label
from fraudstream.core.records import DeadLetterReason, Rejection

LIMIT = 4096


def label(value: object) -> Label | Rejection:
    return parse_label(orjson.dumps({"transactionId": 7, "userId": "u1", "label": value}), LIMIT)


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        ("fraud", Verdict.FRAUD),
        (" LEGIT ", Verdict.LEGIT),
        (1, Verdict.FRAUD),
        (0, Verdict.LEGIT),
        (True, Verdict.FRAUD),
        (False, Verdict.LEGIT),
        ("1", Verdict.FRAUD),
        ("false", Verdict.LEGIT),
        ("Yes", Verdict.FRAUD),
        ("no", Verdict.LEGIT),
    ],
)
def test_a_verdict_is_fraud_or_legit_or_the_1_0_a_fraud_flag_says(
    value: object, verdict: Verdict
) -> None:
    """Chargeback feeds and data sets flag fraud as 1/0, true/false or yes/no: the same
    verdicts (the CSV replay's label column reads the same words)."""
    parsed = label(value)
    assert isinstance(parsed, Label)
    assert (parsed.verdict, parsed.transaction_id) == (verdict, "7")


@pytest.mark.parametrize("value", ["perhaps", 2, 0.5, "", None, [], {}])
def test_anything_else_is_an_invalid_label_that_says_what_is_accepted(value: object) -> None:
    parsed = label(value)
    assert isinstance(parsed, Rejection)
    assert parsed.reason is DeadLetterReason.INVALID_LABEL
    assert "'fraud' or 'legit'" in parsed.detail
