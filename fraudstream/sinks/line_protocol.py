"""Line protocol for InfluxDB: transactions, alerts and worker metrics as points (pure).

Points (the Grafana dashboard is built against exactly this schema)
--------------------------------------------------------------------
``fraud_alerts``  one per alert.
    tags ``userId``, ``reasons`` (reason names sorted and comma-joined,
    e.g. ``amount_threshold,half_space_trees``); fields ``amount`` (float), ``score`` (float:
    Half-Space Trees'), ``risk`` (float: the decision's risk score in [0, 1]), ``alertId``
    (string), ``transactionId`` (string), ``rule`` (int 0/1: ``amount_threshold`` fired),
    ``model`` (int 0/1: ``half_space_trees`` fired).
``transactions``  one per processed transaction (``write_transactions=False`` turns them off).
    tag ``userId``; fields ``amount`` (float), ``score`` (float), ``suspicious`` (int 0/1).
``rule_hits``  one per rule that fired on a transaction: the active rules of an alert (not the
    models) and every shadow rule's hit. tags ``mode`` (``active`` or ``shadow``), ``rule`` (the
    rule id), ``userId``, ``version``; fields ``amount`` (float), ``transactionId`` (string).
``worker_stats``  one per :meth:`InfluxSink.write_metrics` call, at ``at_epoch_s``.
    tag ``worker``; every numeric value of the metrics dict as a float field, nested dicts
    flattened with ``_`` (``latencyMs.p99`` -> ``latencyMs_p99``, ``alertsByReason`` ->
    ``alertsByReason_amount_threshold``); None, non-finite numbers and non-numbers are skipped.

Point time
----------
InfluxDB identifies a point by measurement + tag set + time: a second point with the same three
*replaces* the first. Transactions carry millisecond timestamps, and one user can make two in the
same millisecond, so the time of an alert or transaction point is the transaction's timestamp in
nanoseconds **plus a deterministic offset in [0, 1 ms)**: the first 8 bytes of
``blake2b(transactionId)`` modulo 1,000,000 ns. Two different transactions of one user in one
millisecond then get different times (they collide only with probability 1e-6), while a replay of
the same transaction (Kafka redelivery after a restart: at-least-once) lands on exactly the same
point and overwrites it instead of being counted twice. The offset stays below one millisecond, so
the point is still inside the transaction's millisecond. (A replayed alert whose *reasons* differ
from the first time, e.g. because the model state moved on, has another ``reasons`` tag and thus
is a second point.)

InfluxDB stores times from ``MIN_TIME_NS`` to ``MAX_TIME_NS`` only (1677-09-21 to 2262-04-11): it
drops a line outside them ("time outside range"). A record whose point time falls outside raises
:class:`TimeOutOfRange` instead of becoming lines the sink would count as written.

Line protocol is built here rather than with ``influxdb_client.Point`` for speed on the hot path;
the escaping is the same as ``Point``'s (the unit tests compare the two): commas, spaces and equals
signs in tag keys/values, newlines as ``\\n``; double quotes and backslashes in string fields. A tag
value that ends with a backslash gets a trailing space, as ``Point`` does, because line protocol
cannot express it otherwise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from fraudstream.core.records import ReasonName
from fraudstream.sinks.base import ProcessedRecord

ALERTS_MEASUREMENT = "fraud_alerts"
TRANSACTIONS_MEASUREMENT = "transactions"
WORKER_STATS_MEASUREMENT = "worker_stats"
RULE_HITS_MEASUREMENT = "rule_hits"
#: The reasons the ``rule`` and ``model`` 0/1 fields of an alert point stand for.
RULE_REASON = ReasonName.AMOUNT_THRESHOLD.value
MODEL_REASON = ReasonName.HALF_SPACE_TREES.value
#: Offsets added to a transaction's time stay below this many nanoseconds (1 ms).
TIME_OFFSET_RANGE_NS = 1_000_000
#: The times InfluxDB can store, in Unix nanoseconds (int64 minus its two reserved ends).
MIN_TIME_NS = -9_223_372_036_854_775_806
MAX_TIME_NS = 9_223_372_036_854_775_806

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MICROSECOND = timedelta(microseconds=1)
_ESCAPE_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


# --- line protocol (pure functions) -------------------------------------------------------------


def escape_key(key: str) -> str:
    """A tag key or field key for line protocol."""
    return key.translate(_ESCAPE_KEY)


def escape_tag_value(value: str) -> str:
    """A tag value for line protocol (same rules as ``influxdb_client.Point``)."""
    escaped = value.translate(_ESCAPE_KEY)
    if escaped.endswith("\\"):
        escaped += " "
    return escaped


def string_field(value: str) -> str:
    """A quoted string field value."""
    return '"' + value.translate(_ESCAPE_STRING) + '"'


def float_field(value: float) -> str:
    """A float field value as ``Point`` writes it (``12.0`` -> ``12``; InfluxDB reads a float)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def time_offset_ns(transaction_id: str) -> int:
    """Deterministic offset in [0, 1 ms) for a transaction id (see the module docstring)."""
    digest = hashlib.blake2b(transaction_id.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") % TIME_OFFSET_RANGE_NS


def datetime_ns(moment: datetime) -> int:
    """Exact Unix nanoseconds of a datetime (naive means UTC); no float rounding."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return ((moment - _EPOCH) // _ONE_MICROSECOND) * 1000


class TimeOutOfRange(ValueError):
    """A record's time InfluxDB cannot store: its points would be dropped by InfluxDB."""


def point_time_ns(record: ProcessedRecord) -> int:
    """Time of the record's points: event time in ns plus the transaction id's offset.

    Raises :class:`TimeOutOfRange` outside InfluxDB's range, which it would silently drop.
    """
    tx = record.transaction
    time_ns = datetime_ns(tx.timestamp) + time_offset_ns(tx.transaction_id)
    if not MIN_TIME_NS <= time_ns <= MAX_TIME_NS:
        raise TimeOutOfRange(
            f"transaction {tx.transaction_id!r} at {tx.timestamp.isoformat()} is outside the "
            "times InfluxDB can store (1677-09-21 to 2262-04-11)"
        )
    return time_ns


def epoch_seconds_ns(at_epoch_s: float) -> int:
    """Unix seconds as integer nanoseconds, rounded to the microsecond."""
    return round(at_epoch_s * 1_000_000) * 1000


def transaction_line(record: ProcessedRecord, time_ns: int | None = None) -> str:
    """The ``transactions`` point of a processed record."""
    tx = record.transaction
    if time_ns is None:
        time_ns = point_time_ns(record)
    fields = [f"amount={float_field(tx.amount)}"]
    if math.isfinite(record.score):
        fields.append(f"score={float_field(record.score)}")
    fields.append(f"suspicious={1 if record.alert is not None else 0}i")
    return (
        f"{TRANSACTIONS_MEASUREMENT},userId={escape_tag_value(tx.user_id)} "
        f"{','.join(fields)} {time_ns}"
    )


def reasons_tag(reason_names: list[str]) -> str:
    """Value of the ``reasons`` tag: distinct reason names, sorted, comma-joined."""
    return ",".join(sorted(set(reason_names)))


def alert_line(record: ProcessedRecord, time_ns: int | None = None) -> str | None:
    """The ``fraud_alerts`` point of a processed record (None when it raised no alert)."""
    alert = record.alert
    if alert is None:
        return None
    tx = record.transaction
    if time_ns is None:
        time_ns = point_time_ns(record)
    names = alert.reason_names
    tags = ""
    reasons = reasons_tag(names)
    if reasons:
        tags += f",reasons={escape_tag_value(reasons)}"
    tags += f",userId={escape_tag_value(tx.user_id)}"
    fields = [
        f"alertId={string_field(alert.alert_id)}",
        f"amount={float_field(tx.amount)}",
        f"model={1 if MODEL_REASON in names else 0}i",
    ]
    if math.isfinite(alert.risk):
        fields.append(f"risk={float_field(alert.risk)}")
    fields.append(f"rule={1 if RULE_REASON in names else 0}i")
    if math.isfinite(alert.score):
        fields.append(f"score={float_field(alert.score)}")
    fields.append(f"transactionId={string_field(tx.transaction_id)}")
    return f"{ALERTS_MEASUREMENT}{tags} {','.join(fields)} {time_ns}"


def rule_hit_lines(record: ProcessedRecord, time_ns: int | None = None) -> list[str]:
    """The ``rule_hits`` points of a processed record: its alert's rules, its shadow hits.

    A reason counts when it names its rule and version (rules defined as data); each point has
    its own tag set, so one transaction's hits never overwrite each other.
    """
    hits = [("shadow", reason) for reason in record.shadow_hits]
    if record.alert is not None:
        hits[:0] = [("active", reason) for reason in record.alert.reasons]
    if not hits:
        return []
    tx = record.transaction
    if time_ns is None:
        time_ns = point_time_ns(record)
    fields = f"amount={float_field(tx.amount)},transactionId={string_field(tx.transaction_id)}"
    user = escape_tag_value(tx.user_id)
    lines = []
    for mode, reason in hits:
        rule, version = reason.details.get("rule"), reason.details.get("version")
        if not isinstance(rule, str) or not isinstance(version, int):
            continue  # a model's reason
        tags = f",mode={mode},rule={escape_tag_value(rule)},userId={user},version={version}"
        lines.append(f"{RULE_HITS_MEASUREMENT}{tags} {fields} {time_ns}")
    return lines


def record_lines(record: ProcessedRecord, write_transactions: bool = True) -> list[str]:
    """Every point of one processed record: its transaction (optional), its alert (if any)
    and its rule hits. Raises :class:`TimeOutOfRange` when InfluxDB could not store them."""
    time_ns = point_time_ns(record)
    lines = [transaction_line(record, time_ns)] if write_transactions else []
    if record.alert is not None:
        line = alert_line(record, time_ns)
        if line is not None:
            lines.append(line)
    lines.extend(rule_hit_lines(record, time_ns))
    return lines


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics dict, keys joined with ``_`` (None/inf/NaN skipped)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, bool):
            flat[name] = 1.0 if value else 0.0
        elif isinstance(value, int | float) and math.isfinite(value):
            flat[name] = float(value)
    return flat


def metrics_line(worker: str, metrics: Mapping[str, Any], at_epoch_s: float) -> str | None:
    """The ``worker_stats`` point of one metrics snapshot (None when nothing is numeric)."""
    flat = flatten_metrics(metrics)
    if not flat:
        return None
    fields = ",".join(f"{escape_key(k)}={float_field(v)}" for k, v in sorted(flat.items()))
    tags = f",worker={escape_tag_value(worker)}" if worker else ""
    return f"{WORKER_STATS_MEASUREMENT}{tags} {fields} {epoch_seconds_ns(at_epoch_s)}"


# --- the sink -----------------------------------------------------------------------------------
