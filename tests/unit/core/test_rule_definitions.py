"""Rules as data: definitions and their JSON, the rule set's versions, modes and lists."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fraudstream.core.behaviour import (
    RECENT_TRANSACTIONS,
    BehaviourFeatures,
    ScaleEvidence,
    UserHistory,
)
from fraudstream.core.detector import DetectorConfig, builtin_rules
from fraudstream.core.expressions import ExpressionError, parse
from fraudstream.core.records import Reason, ReasonKind, Transaction
from fraudstream.core.rule_definitions import (
    AllowListKind,
    AmountThresholdKind,
    ChangeStatus,
    DenyListKind,
    ExpressionKind,
    FieldChange,
    HabitSpikeKind,
    RuleDefinition,
    RuleMode,
    RuleSet,
    UnfamiliarPlaceKind,
    UserDeviationKind,
    VelocityKind,
    build_rule,
    definition_from_json,
    definition_to_json,
    seed_definitions,
)
from fraudstream.core.rules import EXPRESSION_FIELDS, DefinedAllowList, DefinedRule, Rule
from fraudstream.settings import DetectionSettings

UTC = timezone.utc
CREATED = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
#: One user's own evidence decides their scale: no stream-wide evidence shared across tests.
MODEL = BehaviourFeatures(scale=ScaleEvidence(weight=0.0))

KINDS: list[Any] = [
    AmountThresholdKind(threshold=5000.0),
    HabitSpikeKind(zscore=4.5, min_history=3),
    UnfamiliarPlaceKind(zscore=2.0, min_history=3),
    UserDeviationKind(
        zscore=4.5, min_history=5, zscore_after_alert=3.0, alert_memory_days=14.0, burst_zscore=4.0
    ),
    VelocityKind(window_seconds=60.0, count=3),
    VelocityKind(window_seconds=3600.0, amount=2000.0),
    VelocityKind(window_seconds=600.0, count=5, amount=1000.0),
    AllowListKind(users=("vip-1",), bin_prefixes=("4111",)),
    DenyListKind(merchants=("M-bad",), countries=("KP",)),
    ExpressionKind(expression='amount > 500 and country not in ["DE", "AT"]'),
]


def definition(kind: Any, rule_id: str = "r1", version: int = 1, **fields: Any) -> RuleDefinition:
    values: dict[str, Any] = {
        "id": rule_id,
        "version": version,
        "description": "a rule for the tests",
        "author": "ana",
        "reason": "issue 42",
        "mode": RuleMode.ACTIVE,
        "created_at": CREATED,
        "kind": kind,
    }
    return RuleDefinition(**{**values, **fields})


def as_json(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "r1",
        "version": 1,
        "author": "ana",
        "reason": "issue 42",
        "mode": "active",
        "created_at": "2024-05-01T09:00:00Z",
        "kind": {"type": "amount_threshold", "threshold": 5000},
    }
    return {**doc, **overrides}


def tx(
    amount: float,
    user: str = "u1",
    at: float = 1_733_270_400.0,
    merchant: str | None = "M1",
    country: str | None = "DE",
) -> Transaction:
    when = datetime.fromtimestamp(at, UTC)
    return Transaction("t", user, amount, when, merchant=merchant, country=country)


def names(reasons: tuple[Reason, ...]) -> list[str]:
    return [str(reason.name) for reason in reasons]


# --- definitions --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.type)
def test_every_kind_round_trips_through_json(kind: Any) -> None:
    original = definition(kind)
    raw = definition_to_json(original)
    assert orjson.loads(raw)["kind"]["type"] == kind.type
    assert definition_from_json(raw) == original
    assert definition_from_json(raw.decode()) == original


def test_a_deviation_rule_written_before_the_spree_reads_with_the_built_in_spree() -> None:
    older = {
        "type": "user_deviation",
        "zscore": 4.5,
        "min_history": 5,
        "zscore_after_alert": 3.0,
        "alert_memory_days": 14.0,
        "burst_zscore": 4.0,
    }
    raw = orjson.loads(definition_to_json(definition(KINDS[0])))
    read = definition_from_json(orjson.dumps({**raw, "kind": older}))
    assert isinstance(read.kind, UserDeviationKind)
    assert (read.kind.spree, read.kind.spree_day_spend) == (3.0, 1.5)


@pytest.mark.parametrize(
    ("kind", "complaint"),
    [
        ({"type": "amount_threshold", "threshold": -1}, "greater than or equal to 0"),
        ({"type": "amount_threshold"}, "Field required"),
        ({"type": "habit_spike", "zscore": 0, "min_history": 3}, "greater than 0"),
        ({"type": "habit_spike", "zscore": 4.5, "min_history": 0}, "greater than or equal to 1"),
        ({"type": "unfamiliar_place", "zscore": "high", "min_history": 3}, "valid number"),
        (
            {
                "type": "user_deviation",
                "zscore": 4.5,
                "min_history": 5,
                "zscore_after_alert": 3.0,
                "alert_memory_days": -1,
                "burst_zscore": 4.0,
            },
            "greater than or equal to 0",
        ),
        ({"type": "user_deviation", "zscore": 4.5, "min_history": 5}, "Field required"),
        ({"type": "velocity", "window_seconds": 60}, "needs a count, an amount or both"),
        ({"type": "velocity", "window_seconds": 0, "count": 3}, "greater than 0"),
        ({"type": "velocity", "window_seconds": 1e9, "count": 3}, "less than or equal to"),
        (
            {"type": "velocity", "window_seconds": 60, "count": RECENT_TRANSACTIONS + 2},
            "less than or equal to",
        ),
        ({"type": "velocity", "window_seconds": 60, "amount": -5}, "greater than 0"),
        ({"type": "deny_list"}, "at least one user, merchant, country or BIN prefix"),
        ({"type": "allow_list", "bin_prefixes": ["41a1"]}, "should match pattern"),
        ({"type": "allow_list", "users": [""]}, "at least 1 character"),
        ({"type": "expression", "expression": "amount >"}, "found the end at position 8"),
        ({"type": "expression", "expression": "balance > 1"}, "unknown field 'balance'"),
        ({"type": "expression", "expression": "__import__('os')"}, "position"),
        ({"type": "expression", "expression": ""}, "at least 1 character"),
        ({"type": "lottery", "odds": 3}, "does not match any of the expected tags"),
        ({"type": "amount_threshold", "threshold": 1, "extra": 1}, "Extra inputs"),
    ],
)
def test_a_kind_with_bad_parameters_is_refused_with_the_reason(
    kind: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        definition_from_json(orjson.dumps(as_json(kind=kind)))


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"id": "Big Spend"}, "should match pattern"),
        ({"id": "-leading"}, "should match pattern"),
        ({"id": "half_space_trees"}, "a model's reason name"),
        ({"version": 0}, "greater than or equal to 1"),
        ({"version": "2"}, "valid integer"),
        ({"version": True}, "valid integer"),
        ({"mode": "loud"}, "'active', 'shadow' or 'disabled'"),
        ({"created_at": "2024-05-01T09:00:00"}, "timezone"),
        ({"author": ""}, "at least 1 character"),
        ({"reason": ""}, "at least 1 character"),
        ({"owner": "ana"}, "Extra inputs"),
    ],
)
def test_a_definition_with_bad_fields_is_refused(overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        definition_from_json(orjson.dumps(as_json(**overrides)))


def test_a_version_beyond_64_bits_is_refused() -> None:
    # installed, it would outrank every later version and fail to encode for the topic
    raw = orjson.dumps(as_json(version=1)).replace(
        b'"version":1', b'"version":18446744073709551616'
    )
    with pytest.raises(ValidationError, match="less than or equal to 9223372036854775807"):
        definition_from_json(raw)


def test_a_definition_is_immutable() -> None:
    with pytest.raises(ValidationError):
        definition(KINDS[0]).version = 2  # type: ignore[misc]


# --- built rules --------------------------------------------------------------------------------


def test_a_built_rule_names_its_reason_by_the_rule_id_and_stamps_id_and_version() -> None:
    built = build_rule(definition(AmountThresholdKind(threshold=100.0), "big", 7))
    assert isinstance(built, DefinedRule)
    rule: Rule = built  # the core's one rule shape
    reason = rule.check(tx(150.0), UserHistory(), {})
    assert rule.name == "big"
    assert reason is not None and reason.kind is ReasonKind.RULE
    assert reason.to_dict() == {
        "type": "rule",
        "name": "big",
        "threshold": 100.0,
        "rule": "big",
        "version": 7,
    }


def test_an_allow_list_builds_into_something_that_cannot_alert() -> None:
    built = build_rule(definition(AllowListKind(users=("u1",))))
    assert isinstance(built, DefinedAllowList)
    assert not hasattr(built, "check")
    allowed = built.allows(tx(5.0), UserHistory(), {})
    assert allowed is not None and allowed.details["matched"] == "user"


def test_deny_list_matches_users_merchants_countries_and_bin_prefixes() -> None:
    kind = DenyListKind(
        users=("u-stolen",), merchants=("M-bad",), countries=("KP",), bin_prefixes=("400000",)
    )
    rule = build_rule(definition(kind, "blocked"))
    assert isinstance(rule, DefinedRule)
    found = {
        case: rule.check(transaction, UserHistory(), {})
        for case, transaction in {
            "user": tx(5.0, user="u-stolen"),
            "merchant": tx(5.0, merchant="M-bad"),
            "country": tx(5.0, country="KP"),
            "binPrefix": tx(5.0, user="4000001234567899"),
            "none": tx(5.0, user="4111", merchant=None, country=None),
        }.items()
    }
    assert found.pop("none") is None
    for case, reason in found.items():
        assert reason is not None and reason.details["matched"] == case
        assert reason.name == "blocked"


def test_expression_rule_fires_when_true_and_shows_the_values_it_read() -> None:
    kind = ExpressionKind(expression='amount > 500 and country not in ["DE", "AT"] and hour < 6')
    rule = build_rule(definition(kind, "night-abroad"))
    assert isinstance(rule, DefinedRule)
    night = 1_733_270_400.0 + 2 * 3600  # 02:00 UTC
    assert rule.check(tx(900.0, country="DE", at=night), UserHistory(), {}) is None
    assert rule.check(tx(900.0, country="FR", at=night + 6 * 3600), UserHistory(), {}) is None
    reason = rule.check(tx(900.0, country="FR", at=night), UserHistory(), {})
    assert reason is not None
    assert reason.details == {
        "inputs": {"amount": 900.0, "country": "FR", "hour": 2.0},
        "rule": "night-abroad",
        "version": 1,
    }


def test_expression_rule_reads_the_features() -> None:
    rule = build_rule(definition(ExpressionKind(expression="new_country == 1 and velocity > 0.4")))
    assert isinstance(rule, DefinedRule)
    features = {"new_country": 1.0, "velocity": 0.5}
    assert rule.check(tx(5.0), UserHistory(), features) is not None
    assert rule.check(tx(5.0), UserHistory(), {**features, "velocity": 0.1}) is None


def test_velocity_counts_a_hand_checked_sequence() -> None:
    """Count 3 within 60 s: fires on the third of 0, 20, 40 s; not at 100 s (only 40 s is near)."""
    rule = build_rule(definition(VelocityKind(window_seconds=60.0, count=3), "burst"))
    assert isinstance(rule, DefinedRule)
    history = UserHistory()
    start = 1_733_270_400.0
    fired: list[tuple[float, Any]] = []
    for i, offset in enumerate([0.0, 20.0, 40.0, 100.0, 110.0, 130.0]):
        transaction = tx(10.0, at=start + offset)
        reason = rule.check(transaction, history, {})
        assert rule.level(transaction, history, {}) == (0.0 if reason is None else 1.0)
        fired.append((offset, reason and reason.details["count"]))
        MODEL.update(history, transaction, 0, i, suspicious=reason is not None)
    # 110 s: 100 and 110 -> 2 (40 s is 70 s earlier); 130 s: 100, 110, 130 -> 3
    assert fired == [(0.0, None), (20.0, None), (40.0, 3), (100.0, None), (110.0, None), (130.0, 3)]


def test_velocity_sums_amounts_within_the_window() -> None:
    rule = build_rule(definition(VelocityKind(window_seconds=300.0, amount=400.0)))
    assert isinstance(rule, DefinedRule)
    history = UserHistory()
    start = 1_733_270_400.0
    totals: list[Any] = []
    for i, (offset, amount) in enumerate([(0.0, 150.0), (60.0, 200.0), (120.0, 100.0)]):
        transaction = tx(amount, at=start + offset)
        reason = rule.check(transaction, history, {})
        totals.append(reason and reason.details["total"])
        MODEL.update(history, transaction, 0, i, suspicious=reason is not None)
    assert totals == [None, None, 450.0]  # 150, 350, 450 > 400 (the alerted one is remembered)
    late = tx(100.0, at=start + 500.0)  # only 120 s (100) is within 300 s: 200, not over
    assert rule.check(late, history, {}) is None


# --- the rule set -------------------------------------------------------------------------------


def test_applying_a_new_rule_adds_it_and_its_diff_lists_every_field() -> None:
    rules = RuleSet()
    change = rules.apply(definition(AmountThresholdKind(threshold=100.0)))
    assert change.status is ChangeStatus.ADDED and change.accepted
    assert FieldChange("kind.threshold", None, 100.0) in change.changes
    assert rules.get("r1") is not None


def test_a_new_version_replaces_the_old_and_the_diff_names_what_changed() -> None:
    rules = RuleSet([definition(AmountThresholdKind(threshold=100.0))])
    newer = definition(
        AmountThresholdKind(threshold=250.0), version=2, author="bo", mode=RuleMode.SHADOW
    )
    change = rules.apply(newer)
    assert change.status is ChangeStatus.UPDATED
    assert change.changes == (
        FieldChange("version", 1, 2),
        FieldChange("author", "ana", "bo"),
        FieldChange("mode", "active", "shadow"),
        FieldChange("kind.threshold", 100.0, 250.0),
    )
    assert change.describe().splitlines() == [
        "r1 v2: updated",
        "  version: 1 -> 2",
        '  author: "ana" -> "bo"',
        '  mode: "active" -> "shadow"',
        "  kind.threshold: 100.0 -> 250.0",
    ]
    assert rules.get("r1") == newer


def test_a_diff_across_kinds_shows_fields_that_came_and_went() -> None:
    rules = RuleSet([definition(AmountThresholdKind(threshold=100.0))])
    change = rules.apply(definition(VelocityKind(window_seconds=60.0, count=3), version=2))
    assert FieldChange("kind.type", "amount_threshold", "velocity") in change.changes
    assert FieldChange("kind.threshold", 100.0, None) in change.changes
    assert FieldChange("kind.count", None, 3) in change.changes


def test_replaying_the_current_version_changes_nothing() -> None:
    rules = RuleSet([definition(AmountThresholdKind(threshold=100.0))])
    change = rules.apply(definition(AmountThresholdKind(threshold=100.0)))
    assert change.status is ChangeStatus.UNCHANGED and change.accepted and change.changes == ()


@pytest.mark.parametrize("threshold", [100.0, 999.0], ids=["same content", "other content"])
def test_an_older_version_is_refused_and_the_current_one_keeps_running(threshold: float) -> None:
    rules = RuleSet([definition(AmountThresholdKind(threshold=100.0))])
    rules.apply(definition(AmountThresholdKind(threshold=120.0), version=2, reason="v2"))
    change = rules.apply(definition(AmountThresholdKind(threshold=threshold), version=1))
    assert change.status is ChangeStatus.REFUSED and not change.accepted
    assert change.error == "version 1 is older than the current version 2"
    current = rules.get("r1")
    assert current is not None and current.version == 2
    assert names(rules.evaluate(tx(110.0), UserHistory(), {}).reasons) == []
    assert names(rules.evaluate(tx(150.0), UserHistory(), {}).reasons) == ["r1"]


def test_a_reused_version_number_with_new_content_is_refused() -> None:
    rules = RuleSet([definition(AmountThresholdKind(threshold=100.0))])
    change = rules.apply(definition(AmountThresholdKind(threshold=999.0)))
    assert change.status is ChangeStatus.REFUSED
    assert change.error is not None and "exists with other content" in change.error
    assert rules.evaluate(tx(150.0), UserHistory(), {}).reasons != ()


def test_invalid_json_is_refused_with_the_claimed_identity_and_the_last_good_version_stays() -> (
    None
):
    rules = RuleSet([definition(AmountThresholdKind(threshold=100.0))])
    bad = as_json(version=2, kind={"type": "expression", "expression": "amount >> 1"})
    change = rules.apply_json(orjson.dumps(bad))
    assert (change.status, change.rule_id, change.version) == (ChangeStatus.REFUSED, "r1", 2)
    assert change.error is not None and "position 8" in change.error
    assert change.describe().startswith("r1 v2: refused: kind.expression.expression:")
    garbage = rules.apply_json(b"{not json")
    assert garbage.status is ChangeStatus.REFUSED and garbage.rule_id is None
    current = rules.get("r1")
    assert current is not None and current.version == 1


def test_a_rule_set_cannot_be_built_from_conflicting_definitions() -> None:
    with pytest.raises(ValueError, match="exists with other content"):
        RuleSet(
            [
                definition(AmountThresholdKind(threshold=1.0)),
                definition(AmountThresholdKind(threshold=2.0)),
            ]
        )


def test_rules_run_in_the_order_first_added_and_a_new_version_keeps_its_place() -> None:
    rules = RuleSet(
        [
            definition(AmountThresholdKind(threshold=1.0), "first"),
            definition(AmountThresholdKind(threshold=2.0), "second"),
        ]
    )
    rules.apply(definition(AmountThresholdKind(threshold=3.0), "first", version=2))
    assert names(rules.evaluate(tx(10.0), UserHistory(), {}).reasons) == ["first", "second"]
    assert [d.id for d in rules.definitions] == ["first", "second"]


def test_shadow_rules_report_hits_and_never_alert() -> None:
    rules = RuleSet(
        [
            definition(AmountThresholdKind(threshold=100.0), "trial", mode=RuleMode.SHADOW),
            definition(DenyListKind(countries=("DE",)), "trial-deny", mode=RuleMode.SHADOW),
        ]
    )
    outcome = rules.evaluate(tx(150.0), UserHistory(), {})
    assert outcome.reasons == ()
    assert names(outcome.shadow) == ["trial", "trial-deny"]
    assert not outcome.allowed


def test_disabled_rules_do_not_run() -> None:
    rules = RuleSet([definition(AmountThresholdKind(threshold=1.0), mode=RuleMode.DISABLED)])
    assert rules.evaluate(tx(150.0), UserHistory(), {}) == rules.evaluate(
        tx(0.5), UserHistory(), {}
    )
    assert rules.evaluate(tx(150.0), UserHistory(), {}).reasons == ()


@pytest.mark.parametrize(
    ("mode", "suspected"),
    [(RuleMode.ACTIVE, True), (RuleMode.SHADOW, False), (RuleMode.DISABLED, False)],
)
def test_only_an_active_deviation_rule_keeps_a_payment_out_of_learning(
    mode: RuleMode, suspected: bool
) -> None:
    """Past the lowered line's hold, a payment over it is a suspect of the rule in force; a
    rule being tried in shadow, or switched off, must not change what the history learns."""
    day = 86400.0
    kind = UserDeviationKind(
        zscore=4.5, min_history=5, zscore_after_alert=3.0, alert_memory_days=14.0, burst_zscore=4.0
    )
    rules = RuleSet([definition(kind, "deviation", mode=mode)])
    ended = UserHistory(n=9, t_alert=15 * day, t_episode=15 * day)  # a burst 5 days ago
    payment = tx(70.0, at=20 * day)
    assert rules.suspects(payment, ended, {"z": 3.2}) is suspected
    assert not rules.suspects(payment, ended, {"z": 2.9})  # under the lowered line
    assert not rules.suspects(payment, UserHistory(n=9), {"z": 3.2})  # no episode


def test_an_allow_list_suppresses_every_alerting_reason_and_says_why() -> None:
    rules = RuleSet(
        [
            definition(AmountThresholdKind(threshold=100.0), "big"),
            definition(DenyListKind(countries=("DE",)), "deny-de"),
            definition(AmountThresholdKind(threshold=50.0), "trial", mode=RuleMode.SHADOW),
            definition(AllowListKind(users=("vip",)), "vips"),
        ]
    )
    ordinary = rules.evaluate(tx(150.0, user="someone"), UserHistory(), {})
    assert names(ordinary.reasons) == ["big", "deny-de"] and not ordinary.allowed
    vip = rules.evaluate(tx(150.0, user="vip"), UserHistory(), {})
    assert vip.reasons == ()
    assert vip.allowed and names(vip.allowed_by) == ["vips"]
    assert vip.allowed_by[0].details == {
        "matched": "user",
        "value": "vip",
        "rule": "vips",
        "version": 1,
    }
    assert names(vip.suppressed) == ["big", "deny-de"]
    assert names(vip.shadow) == ["trial"]  # shadow rules are still measured


def test_a_shadow_allow_list_reports_what_it_would_allow_and_suppresses_nothing() -> None:
    rules = RuleSet(
        [
            definition(AmountThresholdKind(threshold=100.0), "big"),
            definition(AllowListKind(bin_prefixes=("4111",)), "test-cards", mode=RuleMode.SHADOW),
        ]
    )
    outcome = rules.evaluate(tx(150.0, user="4111000000000000"), UserHistory(), {})
    assert names(outcome.reasons) == ["big"] and not outcome.allowed
    assert names(outcome.shadow) == ["test-cards"]


def test_seed_adds_only_rules_the_set_does_not_hold() -> None:
    rules = RuleSet([definition(AmountThresholdKind(threshold=5.0), "amount_threshold", 3)])
    changes = rules.seed(seed_definitions(DetectorConfig(), CREATED))
    assert [c.rule_id for c in changes] == ["habit_spike", "unfamiliar_place", "user_deviation"]
    kept = rules.get("amount_threshold")
    assert kept is not None and kept.version == 3


# --- seeding ------------------------------------------------------------------------------------


def test_seeded_definitions_are_version_one_of_the_settings_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_AMOUNT_THRESHOLD", "750")
    monkeypatch.setenv("FRAUDSTREAM_HABIT_SPIKE_MIN_HISTORY", "5")
    monkeypatch.setenv("FRAUDSTREAM_DEVIATION_ALERT_MEMORY_DAYS", "7")
    monkeypatch.setenv("FRAUDSTREAM_BURST_ZSCORE", "5.5")
    monkeypatch.setenv("FRAUDSTREAM_SPREE_THRESHOLD", "4")
    seeds = {d.id: d for d in seed_definitions(DetectionSettings(), CREATED)}
    assert list(seeds) == ["amount_threshold", "habit_spike", "unfamiliar_place", "user_deviation"]
    assert seeds["amount_threshold"].kind == AmountThresholdKind(threshold=750.0)
    assert seeds["habit_spike"].kind == HabitSpikeKind(zscore=4.5, min_history=5)
    assert seeds["unfamiliar_place"].kind == UnfamiliarPlaceKind(zscore=2.0, min_history=5)
    assert seeds["user_deviation"].kind == UserDeviationKind(
        zscore=4.5,
        min_history=5,
        zscore_after_alert=3.0,
        alert_memory_days=7.0,
        burst_zscore=5.5,
        spree=4.0,
        spree_day_spend=1.5,
    )
    for seed in seeds.values():
        assert (seed.version, seed.mode, seed.author, seed.created_at) == (
            1,
            RuleMode.ACTIVE,
            "settings",
            CREATED,
        )
        assert seed.reason.startswith("seeded from FRAUDSTREAM_")
        assert definition_from_json(definition_to_json(seed)) == seed


def _today_and_seeded(
    transaction: Transaction, history: UserHistory
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The reasons of today's Detector rules and of the seeded rule set on one transaction.

    Today's reasons are gathered as :meth:`Detector.process` does (a rule's reason counts when
    its level reaches 0.5); the seeded rules must agree on every level too.
    """
    config = DetectionSettings().detector_config()
    features = MODEL.features(history, transaction)
    rules = builtin_rules(config)
    today = [
        reason.to_dict()
        for rule in rules
        if rule.level(transaction, history, features) >= 0.5
        and (reason := rule.check(transaction, history, features)) is not None
    ]
    seeds = seed_definitions(DetectionSettings(), CREATED)
    built = [build_rule(seed) for seed in seeds]
    assert [rule.name for rule in rules] == [rule.name for rule in built]
    assert [rule.level(transaction, history, features) for rule in rules] == [
        rule.level(transaction, history, features)
        for rule in built
        if isinstance(rule, DefinedRule)
    ]
    seeded = RuleSet(seeds).evaluate(transaction, history, features)
    assert seeded.shadow == () and not seeded.allowed
    unstamped = [
        {k: v for k, v in r.to_dict().items() if k not in ("rule", "version")}
        for r in seeded.reasons
    ]
    assert all(r.details["version"] == 1 and r.details["rule"] == r.name for r in seeded.reasons)
    return today, unstamped


START = 1_733_000_000.0


def _habit(amounts: tuple[float, ...] = (20.0, 25.0, 18.0, 22.0, 30.0)) -> UserHistory:
    history = UserHistory()
    for i, amount in enumerate(amounts):
        at = datetime.fromtimestamp(START + i * 3600.0, UTC)
        MODEL.update(
            history,
            Transaction(f"h{i}", "u1", amount, at, merchant="M1", country="DE"),
            0,
            i,
            False,
        )
    return history


def _bursting() -> UserHistory:
    """A once-a-day user, then three payments seconds apart just before 2024-12-04 00:00."""
    history = UserHistory()
    for day in range(20):
        at = datetime.fromtimestamp(1_733_270_400.0 - (20 - day) * 86400.0 + 3600.0, UTC)
        MODEL.update(history, Transaction(f"d{day}", "u1", 25.0, at, merchant="M1"), 0, day, False)
    for i in range(3):
        at = datetime.fromtimestamp(1_733_270_400.0 - 15.0 + 5.0 * i, UTC)
        MODEL.update(history, Transaction(f"b{i}", "u1", 25.0, at), 0, 100 + i, True, False)
    return history


def _steady() -> UserHistory:
    return _habit((20.0, 25.0, 18.0, 22.0, 30.0) * 3)


def _alerted_lately() -> UserHistory:
    history = _steady()
    history.t_alert = 1_733_270_400.0 - 1 * 86400.0
    return history


@pytest.mark.parametrize(
    ("case", "transaction", "history", "fires"),
    [
        ("ordinary", tx(24.0), _habit, []),
        (
            "over the amount threshold",
            tx(15_000.0),
            _habit,
            ["amount_threshold", "habit_spike", "user_deviation"],
        ),
        ("habit spike", tx(900.0), _habit, ["habit_spike"]),  # deviation needs more history
        ("unfamiliar place", tx(80.0, merchant="M9", country="NG"), _habit, ["unfamiliar_place"]),
        (
            "everything",
            tx(20_000.0, merchant="M9", country="NG"),
            _habit,
            ["amount_threshold", "habit_spike", "unfamiliar_place", "user_deviation"],
        ),
        ("burst", tx(25.0), _bursting, ["user_deviation"]),
        ("unusual, no alert before", tx(70.0), _steady, []),
        ("unusual, shortly after an alert", tx(70.0), _alerted_lately, ["user_deviation"]),
    ],
)
def test_seeding_from_the_default_settings_gives_the_same_reasons_as_todays_rules(
    case: str, transaction: Transaction, history: Any, fires: list[str]
) -> None:
    today, seeded = _today_and_seeded(transaction, history())
    assert seeded == today
    assert [reason["name"] for reason in today] == fires


def test_seeding_matches_today_for_a_new_user_too() -> None:
    today, seeded = _today_and_seeded(tx(15_000.0, at=1_733_270_400.0), UserHistory())
    assert seeded == today and [r["name"] for r in today] == ["amount_threshold"]


def test_the_default_amount_threshold_is_seeded_in_amount_units_and_a_set_one_in_the_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [unset] = [
        d for d in seed_definitions(DetectionSettings(), CREATED) if d.id == "amount_threshold"
    ]
    assert unset.kind == AmountThresholdKind(threshold=10000.0, in_amount_units=True)
    monkeypatch.setenv("FRAUDSTREAM_AMOUNT_THRESHOLD", "10000")
    [given] = [
        d for d in seed_definitions(DetectionSettings(), CREATED) if d.id == "amount_threshold"
    ]
    assert given.kind == AmountThresholdKind(threshold=10000.0)


def test_an_amount_threshold_written_before_amount_units_reads_as_the_streams_amounts() -> None:
    older = b'{"type": "amount_threshold", "threshold": 5000}'
    assert AmountThresholdKind.model_validate_json(older).in_amount_units is False


def test_seeding_a_non_finite_setting_is_refused() -> None:
    with pytest.raises(ValidationError):
        seed_definitions(DetectorConfig(amount_threshold=float("inf")), CREATED)


@given(st.text(max_size=120))
def test_a_definition_with_any_expression_text_validates_or_is_refused_never_raised(
    text: str,
) -> None:
    raw = orjson.dumps(
        {
            "id": "fuzz",
            "version": 2,
            "author": "ana",
            "reason": "fuzz",
            "mode": "active",
            "created_at": "2024-05-01T09:00:00Z",
            "kind": {"type": "expression", "expression": text},
        }
    )
    try:
        parse(text, EXPRESSION_FIELDS)
        parses = True
    except ExpressionError:
        parses = False
    rules = RuleSet([definition(AmountThresholdKind(threshold=1.0), "fuzz")])
    change = rules.apply_json(raw)
    assert change.accepted is parses
    if not parses:
        assert change.error is not None and "expression" in change.error
        assert rules.get("fuzz").version == 1  # type: ignore[union-attr]
