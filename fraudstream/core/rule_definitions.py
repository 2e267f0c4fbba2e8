"""Rules as data: versioned definitions, their JSON form, and the rule set that runs them.

A :class:`RuleDefinition` is one version of one rule: who changed it and why, whether it is
``active`` (alerts), ``shadow`` (hits are reported, never alert) or ``disabled``, and its
``kind`` with the kind's own parameters. Definitions travel as JSON (:func:`definition_to_json`,
:func:`definition_from_json`); :func:`build_rule` turns one into the core's rule objects, whose
reasons are named by the rule's id and carry ``rule`` and ``version`` in their details.

A :class:`RuleSet` holds the current version of every rule. :meth:`RuleSet.apply` takes a new
version, returns the field-by-field diff for the operator to read, and refuses an invalid or
stale one while the last good version keeps running. :meth:`RuleSet.evaluate` runs the rules
on one transaction; when an active allow list matches, the outcome carries no alerting
reasons and ``allowed_by`` says why, and the caller must drop its model reasons too.

:func:`seed_definitions` writes today's ``FRAUDSTREAM_*`` settings as version 1 of the four
built-in rules, so a new deployment starts with exactly the rules it ran before.

>>> from datetime import datetime, timezone
>>> from fraudstream.core.records import Transaction
>>> from fraudstream.core.behaviour import UserHistory
>>> rules = RuleSet()
>>> definition = definition_from_json(
...     '{"id": "big-spend", "version": 1, "author": "ana", "reason": "issue 42",'
...     ' "mode": "active", "created_at": "2024-05-01T09:00:00Z",'
...     ' "kind": {"type": "amount_threshold", "threshold": 5000}}'
... )
>>> rules.apply(definition).status.value
'added'
>>> tx = Transaction("t1", "u1", 7500.0, datetime(2024, 5, 2, tzinfo=timezone.utc))
>>> [r.to_dict() for r in rules.evaluate(tx, UserHistory(), {}).reasons]
[{'type': 'rule', 'name': 'big-spend', 'threshold': 5000.0, 'rule': 'big-spend', 'version': 1}]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Protocol

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from fraudstream.core.behaviour import RECENT_TRANSACTIONS, RECENT_WINDOW_SECONDS, UserHistory
from fraudstream.core.expressions import MAX_EXPRESSION_LENGTH, ExpressionError, parse
from fraudstream.core.records import Reason, ReasonName, Transaction, isoformat_utc, reason_text
from fraudstream.core.rules import (
    EXPRESSION_FIELDS,
    AllowListRule,
    AmountThresholdRule,
    ArrangedRules,
    DefinedAllowList,
    DefinedRule,
    DenyListRule,
    ExpressionRule,
    HabitSpikeRule,
    ListMatch,
    Rule,
    RuleOutcome,
    UnfamiliarPlaceRule,
    UserDeviationRule,
    VelocityRule,
)

#: A rule id: lower-case letters, digits, ``-`` and ``_``; it names the rule's alerts.
RULE_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
#: Ids a rule may not take: the models' reason names.
RESERVED_IDS = frozenset({ReasonName.HALF_SPACE_TREES.value, ReasonName.FRAUD_CLASSIFIER.value})
#: Longest description or change reason, in characters.
MAX_TEXT_LENGTH = 2000
#: The largest rule version (a signed 64-bit integer).
MAX_VERSION = 2**63 - 1
#: Most entries in one list of an allow or deny list.
MAX_LIST_ENTRIES = 10_000
#: Who the seeded definitions name as their author.
SEED_AUTHOR = "settings"
#: Seconds in a day (the user-deviation kind gives its alert memory in days).
DAY = 86400.0

_Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]
_Entry = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_BinPrefix = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,19}$")]
_Finite = Annotated[float, Field(allow_inf_nan=False)]


class RuleMode(str, Enum):
    """What a rule's hits do: alert, get reported only, or nothing."""

    ACTIVE = "active"
    #: Hits are reported beside the decision and never alert: trying a rule on live traffic.
    SHADOW = "shadow"
    DISABLED = "disabled"


class _Kind(BaseModel):
    """A rule kind's parameters; ``type`` names the kind in JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AmountThresholdKind(_Kind):
    """Fires when the amount is strictly greater than ``threshold``: in the stream's amounts,
    or with ``in_amount_units`` in the detector's amount unit (what the default seeds)."""

    type: Literal["amount_threshold"] = "amount_threshold"
    threshold: _Finite = Field(ge=0)
    in_amount_units: bool = False


class HabitSpikeKind(_Kind):
    """Fires when the amount's z-score against the user's habit reaches ``zscore``."""

    type: Literal["habit_spike"] = "habit_spike"
    zscore: _Finite = Field(gt=0)
    min_history: int = Field(ge=1)


class UnfamiliarPlaceKind(_Kind):
    """Fires on a new merchant in a new country whose amount's z-score reaches ``zscore``
    (and, where the transaction has coordinates, at least ``distance_ratio`` times the user's
    usual distance from their centre)."""

    type: Literal["unfamiliar_place"] = "unfamiliar_place"
    zscore: _Finite
    min_history: int = Field(ge=1)
    distance_ratio: _Finite = Field(3.0, ge=0)


class UserDeviationKind(_Kind):
    """Fires when the amount's z-score on the user's own scale reaches ``zscore`` (once the
    user has ``min_history`` transactions; ``zscore_after_alert`` within ``alert_memory_days``
    of the start of the user's alert episode, while it holds: see ``UserDeviationRule``), on a
    burst whose z-score against the user's own usual rate
    reaches ``burst_zscore``, or on a spree: the user's ``spree`` reaching ``spree`` on a
    payment above habit that takes the day's ``spend_1d`` to ``spree_day_spend`` (both
    default to the built-in values, so definitions written before them read the same).
    """

    type: Literal["user_deviation"] = "user_deviation"
    zscore: _Finite = Field(gt=0)
    min_history: int = Field(ge=1)
    zscore_after_alert: _Finite = Field(gt=0)
    alert_memory_days: _Finite = Field(ge=0)
    burst_zscore: _Finite = Field(gt=0)
    spree: _Finite = Field(3.0, gt=0)
    spree_day_spend: _Finite = 1.5


class VelocityKind(_Kind):
    """Fires when a user's transactions within ``window_seconds`` reach ``count`` or exceed
    ``amount`` in total (this one included; give either limit or both).

    The history remembers a user's last ``RECENT_TRANSACTIONS`` transactions of the past day,
    which bounds ``count`` and ``window_seconds``; a total counts those remembered ones only.
    """

    type: Literal["velocity"] = "velocity"
    window_seconds: _Finite = Field(gt=0, le=RECENT_WINDOW_SECONDS)
    count: int | None = Field(None, ge=2, le=RECENT_TRANSACTIONS + 1)
    amount: _Finite | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _has_a_limit(self) -> VelocityKind:
        if self.count is None and self.amount is None:
            raise ValueError("a velocity rule needs a count, an amount or both")
        return self


class _ListKind(_Kind):
    """Users, merchants, countries and card BIN prefixes (digits matched at the user id's start)."""

    users: tuple[_Entry, ...] = Field((), max_length=MAX_LIST_ENTRIES)
    merchants: tuple[_Entry, ...] = Field((), max_length=MAX_LIST_ENTRIES)
    countries: tuple[_Entry, ...] = Field((), max_length=MAX_LIST_ENTRIES)
    bin_prefixes: tuple[_BinPrefix, ...] = Field((), max_length=MAX_LIST_ENTRIES)

    @model_validator(mode="after")
    def _not_empty(self) -> _ListKind:
        if not (self.users or self.merchants or self.countries or self.bin_prefixes):
            raise ValueError("a list needs at least one user, merchant, country or BIN prefix")
        return self

    def list_match(self) -> ListMatch:
        """The lists as the core matches them."""
        return ListMatch(
            frozenset(self.users),
            frozenset(self.merchants),
            frozenset(self.countries),
            self.bin_prefixes,
        )


class AllowListKind(_ListKind):
    """Transactions on the list raise no alert (rules and models alike)."""

    type: Literal["allow_list"] = "allow_list"


class DenyListKind(_ListKind):
    """Transactions on the list always alert."""

    type: Literal["deny_list"] = "deny_list"


class ExpressionKind(_Kind):
    """Fires when ``expression`` (see :mod:`fraudstream.core.expressions`) is true."""

    type: Literal["expression"] = "expression"
    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION_LENGTH)

    @field_validator("expression")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse(value, EXPRESSION_FIELDS)  # an ExpressionError is a ValueError: pydantic reports it
        return value


RuleKind = Annotated[
    AmountThresholdKind
    | HabitSpikeKind
    | UnfamiliarPlaceKind
    | UserDeviationKind
    | VelocityKind
    | AllowListKind
    | DenyListKind
    | ExpressionKind,
    Field(discriminator="type"),
]


class RuleDefinition(BaseModel):
    """One version of one rule, as it travels on the control topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=RULE_ID_PATTERN)
    #: A JSON integer from 1 (no string, no boolean), at most what Kafka's tooling and other
    #: languages read as a 64-bit integer: a larger one would outrank every later version.
    version: int = Field(ge=1, le=MAX_VERSION, strict=True)
    description: _Text = ""
    author: str = Field(min_length=1, max_length=200)
    #: Why this version exists (the change's justification, for the audit trail).
    reason: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    mode: RuleMode
    created_at: AwareDatetime
    kind: RuleKind

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_IDS:
            raise ValueError(f"{value!r} is a model's reason name")
        return value


def definition_to_json(definition: RuleDefinition) -> bytes:
    """The definition as one line of JSON."""
    return orjson.dumps(definition.model_dump(mode="json"))


def definition_from_json(raw: bytes | str) -> RuleDefinition:
    """Parse and validate a definition; raises pydantic's ``ValidationError`` when invalid."""
    return RuleDefinition.model_validate_json(raw)


# --- built rules --------------------------------------------------------------------------------


def build_rule(definition: RuleDefinition) -> DefinedRule | DefinedAllowList:
    """The core rule a definition describes (whatever its mode)."""
    kind = definition.kind
    stamp = (definition.id, definition.version)
    if isinstance(kind, AllowListKind):
        return DefinedAllowList(*stamp, AllowListRule(kind.list_match()))
    inner: Rule
    if isinstance(kind, AmountThresholdKind):
        inner = AmountThresholdRule(kind.threshold, in_amount_units=kind.in_amount_units)
    elif isinstance(kind, HabitSpikeKind):
        inner = HabitSpikeRule(kind.zscore, kind.min_history)
    elif isinstance(kind, UnfamiliarPlaceKind):
        inner = UnfamiliarPlaceRule(kind.zscore, kind.min_history, kind.distance_ratio)
    elif isinstance(kind, UserDeviationKind):
        inner = UserDeviationRule(
            kind.zscore,
            kind.min_history,
            kind.zscore_after_alert,
            kind.alert_memory_days * DAY,
            kind.burst_zscore,
            kind.spree,
            kind.spree_day_spend,
        )
    elif isinstance(kind, VelocityKind):
        inner = VelocityRule(kind.window_seconds, kind.count, kind.amount)
    elif isinstance(kind, DenyListKind):
        inner = DenyListRule(kind.list_match())
    else:
        inner = ExpressionRule(parse(kind.expression, EXPRESSION_FIELDS))
    return DefinedRule(*stamp, inner)


# --- the rule set -------------------------------------------------------------------------------


class ChangeStatus(str, Enum):
    """What applying a definition did."""

    ADDED = "added"
    UPDATED = "updated"
    #: The same version with the same content again (a replayed control topic): nothing to do.
    UNCHANGED = "unchanged"
    #: Invalid, stale, or a reused version number: the current version stays.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a definition that differs between versions (``None`` where absent).

    >>> str(FieldChange("kind.threshold", 10000.0, 5000.0))
    'kind.threshold: 10000.0 -> 5000.0'
    """

    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {_shown(self.old)} -> {_shown(self.new)}"


@dataclass(frozen=True, slots=True)
class RuleChange:
    """The result of :meth:`RuleSet.apply`: what happened, to which rule, and the diff."""

    status: ChangeStatus
    rule_id: str | None
    version: int | None
    changes: tuple[FieldChange, ...] = ()
    #: Why the definition was refused.
    error: str | None = None

    @property
    def accepted(self) -> bool:
        """True unless the definition was refused."""
        return self.status is not ChangeStatus.REFUSED

    def describe(self) -> str:
        """A few lines for an operator: the outcome, then one line per changed field."""
        head = f"{self.rule_id or '?'} v{self.version or '?'}: {self.status.value}"
        if self.error:
            head = f"{head}: {self.error}"
        return "\n".join([head, *(f"  {change}" for change in self.changes)])


@dataclass(frozen=True, slots=True)
class _Installed:
    definition: RuleDefinition
    rule: DefinedRule | DefinedAllowList


class RuleSet:
    """The current version of every rule, and their verdict on a transaction.

    Rules run in the order they were first added; a new version keeps its rule's place.
    """

    def __init__(self, definitions: Iterable[RuleDefinition] = ()) -> None:
        self._installed: dict[str, _Installed] = {}
        self._arranged = ArrangedRules((), (), ())
        for definition in definitions:
            change = self.apply(definition)
            if not change.accepted:
                raise ValueError(change.describe())

    @property
    def definitions(self) -> tuple[RuleDefinition, ...]:
        """The current version of every rule, in evaluation order."""
        return tuple(entry.definition for entry in self._installed.values())

    def get(self, rule_id: str) -> RuleDefinition | None:
        """The current version of one rule, or ``None``."""
        entry = self._installed.get(rule_id)
        return None if entry is None else entry.definition

    def apply(self, definition: RuleDefinition) -> RuleChange:
        """Install a new version; refuses an older one or a reused version with new content."""
        rule_id, version = definition.id, definition.version
        current = self.get(rule_id)
        if current is not None:
            if version < current.version:
                error = f"version {version} is older than the current version {current.version}"
                return RuleChange(ChangeStatus.REFUSED, rule_id, version, error=error)
            if version == current.version:
                if definition == current:
                    return RuleChange(ChangeStatus.UNCHANGED, rule_id, version)
                error = f"version {version} exists with other content; give it a new version"
                return RuleChange(ChangeStatus.REFUSED, rule_id, version, error=error)
        try:
            rule = build_rule(definition)
        except (ExpressionError, ValueError) as exc:  # validated already; kept as a safeguard
            return RuleChange(ChangeStatus.REFUSED, rule_id, version, error=str(exc))
        self._installed[rule_id] = _Installed(definition, rule)
        self._arrange()
        status = ChangeStatus.ADDED if current is None else ChangeStatus.UPDATED
        return RuleChange(status, rule_id, version, diff_definitions(current, definition))

    def apply_json(self, raw: bytes | str) -> RuleChange:
        """Like :meth:`apply` for a definition's JSON; an invalid one is refused, not raised."""
        try:
            definition = definition_from_json(raw)
        except ValidationError as exc:
            rule_id, version = _claimed_identity(raw)
            return RuleChange(ChangeStatus.REFUSED, rule_id, version, error=validation_summary(exc))
        return self.apply(definition)

    def seed(self, definitions: Iterable[RuleDefinition]) -> tuple[RuleChange, ...]:
        """Add the definitions whose rule is not here yet (a rule's later versions win)."""
        return tuple(self.apply(d) for d in definitions if d.id not in self._installed)

    def evaluate(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> RuleOutcome:
        """Run active and shadow rules on ``tx`` (:meth:`ArrangedRules.evaluate`)."""
        return self._arranged.evaluate(tx, history, features)

    def suspects(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> bool:
        """Whether an active rule keeps ``tx`` out of the user's history without alerting on
        it (:meth:`ArrangedRules.suspects`)."""
        return self._arranged.suspects(tx, history, features)

    def _arrange(self) -> None:
        """Sort the installed rules by mode once, so evaluation does no bookkeeping."""
        active: list[DefinedRule] = []
        shadow: list[DefinedRule | DefinedAllowList] = []
        allow: list[DefinedAllowList] = []
        for entry in self._installed.values():
            mode, rule = entry.definition.mode, entry.rule
            if mode is RuleMode.SHADOW:
                shadow.append(rule)
            elif mode is RuleMode.ACTIVE and isinstance(rule, DefinedAllowList):
                allow.append(rule)
            elif mode is RuleMode.ACTIVE and isinstance(rule, DefinedRule):
                active.append(rule)
        self._arranged = ArrangedRules(tuple(active), tuple(shadow), tuple(allow))


def diff_definitions(old: RuleDefinition | None, new: RuleDefinition) -> tuple[FieldChange, ...]:
    """Every field (dotted path into ``kind``) whose value differs, in a stable order."""
    before = _flatten(old.model_dump(mode="json")) if old is not None else {}
    after = _flatten(new.model_dump(mode="json"))
    paths = list(after) + [path for path in before if path not in after]
    return tuple(
        FieldChange(path, before.get(path), after.get(path))
        for path in paths
        if before.get(path) != after.get(path) or (path in before) != (path in after)
    )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _shown(value: Any) -> str:
    return "(none)" if value is None else orjson.dumps(value).decode()


def _claimed_identity(raw: bytes | str) -> tuple[str | None, int | None]:
    """The id and version an invalid definition claims, when it says, for the refusal."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    rule_id, version = data.get("id"), data.get("version")
    return (
        rule_id if isinstance(rule_id, str) else None,
        version if isinstance(version, int) and not isinstance(version, bool) else None,
    )


def validation_summary(error: ValidationError) -> str:
    """Pydantic's errors on one line: ``where: what; ...`` (messages only, never the input)."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "definition"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


# --- shadow hits ---------------------------------------------------------------------------------


def shadow_hit_json(tx: Transaction, hit: Reason, detected_at: datetime, alerted: bool) -> bytes:
    """The record a shadow rule's hit publishes: the rule, the transaction, the live verdict.

    ``alerted`` says whether the rules in force alerted on the same transaction, so the
    shadow rule's extra hits (and its misses, once labels arrive) can be judged.

    >>> from datetime import timezone
    >>> from fraudstream.core.records import ReasonKind
    >>> tx = Transaction("t1", "u1", 900.0, datetime(2024, 5, 2, tzinfo=timezone.utc))
    >>> hit = Reason(ReasonKind.RULE, "big-spend", {"threshold": 500.0, "rule": "big-spend",
    ...     "version": 3})
    >>> record = orjson.loads(shadow_hit_json(tx, hit, tx.timestamp, alerted=False))
    >>> record["rule"], record["version"], record["transactionId"], record["alerted"]
    ('big-spend', 3, 't1', False)
    """
    return orjson.dumps(
        {
            "rule": reason_text(hit.name),
            "version": hit.details.get("version"),
            "mode": "shadow",
            "transactionId": tx.transaction_id,
            "userId": tx.user_id,
            "amount": tx.amount,
            "timestamp": isoformat_utc(tx.timestamp),
            "detectedAt": isoformat_utc(detected_at),
            "alerted": alerted,
            "reason": hit.to_dict(),
        }
    )


# --- seeding ------------------------------------------------------------------------------------


class BuiltinRuleSettings(Protocol):
    """The settings of the four built-in rules (``DetectionSettings`` and ``DetectorConfig``)."""

    @property
    def amount_threshold(self) -> float | None:
        """Amount rule: fires above this (None: :data:`DEFAULT_AMOUNT_THRESHOLD` of the unit)."""

    @property
    def habit_spike_zscore(self) -> float:
        """Habit-spike rule: z-score it fires at."""

    @property
    def habit_spike_min_history(self) -> int:
        """Habit-spike and unfamiliar-place rules: transactions a user needs first."""

    @property
    def unfamiliar_place_zscore(self) -> float:
        """Unfamiliar-place rule: z-score it fires at."""

    @property
    def unfamiliar_place_distance_ratio(self) -> float:
        """Unfamiliar-place rule: how much further than usual from the user's centre."""

    @property
    def deviation_zscore(self) -> float:
        """User-deviation rule: amount z-score it fires at."""

    @property
    def deviation_min_history(self) -> int:
        """User-deviation rule: transactions a user needs before amounts count."""

    @property
    def deviation_zscore_after_alert(self) -> float:
        """User-deviation rule: amount z-score it fires at shortly after the user's last alert."""

    @property
    def deviation_alert_memory_days(self) -> float:
        """User-deviation rule: days after an alert that the lower z-score applies."""

    @property
    def burst_zscore(self) -> float:
        """User-deviation rule: burst z-score it fires at."""

    @property
    def spree_threshold(self) -> float:
        """User-deviation rule: spree CUSUM it fires at."""

    @property
    def spree_day_spend(self) -> float:
        """User-deviation rule: the day's spending (``spend_1d``) a spree must reach."""


def _amount_kind(threshold: float | None) -> AmountThresholdKind:
    rule = AmountThresholdRule.configured(threshold)
    return AmountThresholdKind(threshold=rule.threshold, in_amount_units=rule.in_amount_units)


def seed_definitions(
    settings: BuiltinRuleSettings, created_at: datetime
) -> tuple[RuleDefinition, ...]:
    """Version 1 of the built-in rules from the ``FRAUDSTREAM_*`` settings, all active.

    Their ids are today's reason names, so alerts keep their names. A non-finite setting
    cannot be written as data and raises ``ValidationError``.

    >>> from datetime import datetime, timezone
    >>> from fraudstream.core.detector import DetectorConfig
    >>> seeds = seed_definitions(DetectorConfig(), datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> [(d.id, d.version, d.mode.value) for d in seeds]
    [('amount_threshold', 1, 'active'), ('habit_spike', 1, 'active'), \
('unfamiliar_place', 1, 'active'), ('user_deviation', 1, 'active')]
    """
    kinds: list[tuple[ReasonName, str, str, RuleKind]] = [
        (
            ReasonName.AMOUNT_THRESHOLD,
            "Amount strictly greater than the threshold.",
            "FRAUDSTREAM_AMOUNT_THRESHOLD",
            _amount_kind(settings.amount_threshold),
        ),
        (
            ReasonName.HABIT_SPIKE,
            "Amount far above the user's own habit.",
            "FRAUDSTREAM_HABIT_SPIKE_ZSCORE and FRAUDSTREAM_HABIT_SPIKE_MIN_HISTORY",
            HabitSpikeKind(
                zscore=settings.habit_spike_zscore,
                min_history=settings.habit_spike_min_history,
            ),
        ),
        (
            ReasonName.UNFAMILIAR_PLACE,
            "New merchant in a new country at an unusual amount, far away where located.",
            "FRAUDSTREAM_UNFAMILIAR_PLACE_ZSCORE, FRAUDSTREAM_UNFAMILIAR_PLACE_DISTANCE_RATIO "
            "and FRAUDSTREAM_HABIT_SPIKE_MIN_HISTORY",
            UnfamiliarPlaceKind(
                zscore=settings.unfamiliar_place_zscore,
                min_history=settings.habit_spike_min_history,
                distance_ratio=settings.unfamiliar_place_distance_ratio,
            ),
        ),
        (
            ReasonName.USER_DEVIATION,
            "Amount far from the user's own scale, a burst against the user's own rate, or a "
            "spree of above-habit payments.",
            "FRAUDSTREAM_DEVIATION_ZSCORE, FRAUDSTREAM_DEVIATION_MIN_HISTORY, "
            "FRAUDSTREAM_DEVIATION_ZSCORE_AFTER_ALERT, FRAUDSTREAM_DEVIATION_ALERT_MEMORY_DAYS, "
            "FRAUDSTREAM_BURST_ZSCORE, FRAUDSTREAM_SPREE_THRESHOLD and "
            "FRAUDSTREAM_SPREE_DAY_SPEND",
            UserDeviationKind(
                zscore=settings.deviation_zscore,
                min_history=settings.deviation_min_history,
                zscore_after_alert=settings.deviation_zscore_after_alert,
                alert_memory_days=settings.deviation_alert_memory_days,
                burst_zscore=settings.burst_zscore,
                spree=settings.spree_threshold,
                spree_day_spend=settings.spree_day_spend,
            ),
        ),
    ]
    return tuple(
        RuleDefinition(
            id=name.value,
            version=1,
            description=description,
            author=SEED_AUTHOR,
            reason=f"seeded from {source}",
            mode=RuleMode.ACTIVE,
            created_at=created_at,
            kind=kind,
        )
        for name, description, source, kind in kinds
    )
