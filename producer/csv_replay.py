"""Replay a CSV file (plain or gzip) as labeled transactions in event-time order.

Two formats have ready mappings:

* ``paysim``: the PaySim columns ``step,type,amount,nameOrig,...,isFraud,isFlaggedFraud``.
  ``step`` is the hour since ``start_time``; rows of one step are spread evenly over that hour
  in file order, so pacing stays smooth and order is kept. ``nameOrig`` is the user,
  ``nameDest`` the merchant, ``type`` the channel, ``isFraud`` the label.
* ``generic``: a header row with ``userId,amount,timestamp`` and optionally ``label`` (0/1,
  true/false, yes/no, fraud/legit; another column with ``label_column``), ``transactionId``,
  ``merchantId``, ``country``, ``channel``, ``category``, ``latitude`` and ``longitude``, and
  ``scenario`` (a fraud row's scenario name, for recall per scenario in ``fraudstream evaluate``).
  The names are the worker's input mapping (:class:`fraudstream.core.fields.FieldMapping`), so a
  CSV that says ``customer_id``, ``TX_AMOUNT`` and ``terminal_id`` replays with the same
  ``FRAUDSTREAM_FIELD_*`` settings the worker reads it with; ``label`` and ``scenario`` are the
  producer's own columns.
  Its timestamps are read as ``FRAUDSTREAM_FIELD_TIMESTAMP_UNIT`` says: ISO-8601 or epoch
  seconds/milliseconds, or, with ``h`` or ``d``, a step counter in hours or days (BankSim's
  ``step`` is the day), whose rows are placed as PaySim's are.

The file is read twice: a first pass validates every row, collects bad rows (with line
numbers) and checks the order; the second pass streams records. Only a file that is not in
time order is held in memory, to be sorted (stably).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, NamedTuple, TextIO

from fraudstream.core.fields import (
    EPOCH_MS_CUTOFF,
    STEP_UNITS,
    UNIT_SECONDS,
    FieldMapping,
    TimestampUnit,
)
from fraudstream.core.labels import Verdict, parse_verdict
from fraudstream.core.parsing import InvalidField
from fraudstream.core.parsing import parse_amount as parse_transaction_amount
from producer.generator import DEFAULT_START_TIME
from producer.records import (
    CSV_FRAUD_SCENARIO,
    DEFAULT_FIELDS,
    NORMAL_SCENARIO,
    UNLABELED_SCENARIO,
    LabeledTransaction,
    epoch_ms,
)

CsvFormat = Literal["paysim", "generic"]
CSV_FORMATS: tuple[CsvFormat, ...] = ("paysim", "generic")

PAYSIM_COLUMNS: tuple[str, ...] = (
    "step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig",
    "nameDest", "oldbalanceDest", "newbalanceDest", "isFraud", "isFlaggedFraud",
)  # fmt: skip
PAYSIM_REQUIRED: tuple[str, ...] = ("step", "type", "amount", "nameOrig", "nameDest", "isFraud")

MILLISECONDS_PER_HOUR = 3_600_000
#: Under ``auto``, a file whose every timestamp lies before this (1973-03-03, as epoch
#: milliseconds) holds a step counter, not instants: refused with the setting that reads it.
STEP_COUNTER_BELOW_MS = 100_000_000_000
#: Bad rows kept with their line number for the report; the rest are only counted.
MAX_REPORTED_BAD_ROWS = 100
#: The generic format's ground-truth column unless ``--label-column`` names another
#: (``is_fraud``, ``TX_FRAUD``, ``Class``: public data sets each have their own).
DEFAULT_LABEL_COLUMN = "label"
GZIP_MAGIC = b"\x1f\x8b"


class CsvFormatError(ValueError):
    """The file as a whole cannot be replayed (unknown format, missing columns)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A skipped CSV row: its physical line number and why it was refused."""

    line_number: int
    reason: str


class InvalidRow(ValueError):
    """One row failed validation; the message says which column and why."""


class ParsedRow(NamedTuple):
    """A validated row, before the rows of a step (PaySim's hour, a day) get their place in it."""

    line_number: int
    time_key: int  # a step (PaySim, or generic in hours/days), else epoch milliseconds
    transaction_id: str
    user_id: str
    amount: float
    is_fraud: bool | None
    merchant_id: str | None
    country: str | None
    channel: str | None
    x: float | None = None
    y: float | None = None
    category: str | None = None
    scenario: str | None = None


@dataclass(slots=True)
class CsvScan:
    """What the validation pass learned about a file."""

    data_rows: int = 0
    bad_row_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    in_time_order: bool = True
    rows_per_step: Counter[int] = field(default_factory=Counter)

    @property
    def good_rows(self) -> int:
        """Rows that will be replayed."""
        return self.data_rows - self.bad_row_count

    def describe(self, replayed: int | None = None) -> str:
        """Human-readable report of skipped rows, with line numbers.

        ``replayed`` is how many rows were actually sent, when a run stopped early (--count,
        --duration, Ctrl-C); the report then says "N of M rows", not every good row.

        >>> CsvScan(data_rows=5).describe(replayed=2)
        'csv: 2 of 5 rows replayed, no bad rows'
        """
        done = self.good_rows if replayed is None else replayed
        rows = f"{done}" if done == self.good_rows else f"{done} of {self.good_rows}"
        if not self.bad_row_count:
            return f"csv: {rows} rows replayed, no bad rows"
        lines = [f"csv: {rows} rows replayed, {self.bad_row_count} bad rows skipped:"]
        lines += [f"  line {bad.line_number}: {bad.reason}" for bad in self.bad_rows]
        if self.bad_row_count > len(self.bad_rows):
            lines.append(f"  ... and {self.bad_row_count - len(self.bad_rows)} more")
        return "\n".join(lines)


def open_text(path: Path) -> TextIO:
    """Open a CSV file for reading, transparently gunzipping it (by magic bytes)."""
    with open(path, "rb") as probe:
        compressed = probe.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    if compressed:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def parse_label(text: str) -> bool:
    """Whether a label column says fraud, in the worker's vocabulary (0/1, true/false,
    yes/no, fraud/legit; any case).

    >>> parse_label("1"), parse_label("No"), parse_label("fraud")
    (True, False, True)
    """
    try:
        return parse_verdict(text) is Verdict.FRAUD
    except InvalidField as exc:
        raise InvalidRow(str(exc).replace("'label'", "label", 1)) from None


def parse_amount(text: str) -> float:
    """A finite, non-negative decimal, as the worker reads it (a currency sign before it
    allowed: ``$134.09``).

    >>> parse_amount("$134.09"), parse_amount("12")
    (134.09, 12.0)
    """
    try:
        return parse_transaction_amount(text)
    except InvalidField as exc:
        raise InvalidRow(str(exc)) from None


def parse_timestamp_ms(text: str, unit: TimestampUnit = "auto") -> int:
    """ISO-8601 (no zone means UTC) or an epoch number in ``unit`` (``auto``: seconds, or
    milliseconds past 1e11), as epoch milliseconds.

    >>> parse_timestamp_ms("1700000000"), parse_timestamp_ms("1700000000", "ms")
    (1700000000000, 1700000000)
    """
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            raise InvalidRow(f"timestamp must be a finite epoch >= 0, got {text!r}")
        if unit == "auto":
            return round(number if number >= EPOCH_MS_CUTOFF else number * 1000)
        return round(number * UNIT_SECONDS[unit] * 1000)
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise InvalidRow(f"timestamp is not ISO-8601 or epoch: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return epoch_ms(moment)


def parse_step(text: str, column: str) -> int:
    """A step counter's value: a whole number >= 0 (``"3"`` or ``"3.0"``).

    >>> parse_step(" 7 ", "step")
    7
    """
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        raise InvalidRow(f"{column} is not a step number: {text!r}") from None
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise InvalidRow(f"{column} must be a whole number >= 0, got {text!r}")
    return int(number)


def _required_text(row: dict[str, str], column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise InvalidRow(f"{column} is empty")
    return value


def _optional_text(row: dict[str, str], column: str) -> str | None:
    value = (row.get(column) or "").strip()
    return value or None


def parse_paysim_row(row: dict[str, str], line_number: int) -> ParsedRow:
    """Validate one PaySim row; ``time_key`` is its step (hour index)."""
    step_text = _required_text(row, "step")
    try:
        step = int(step_text)
    except ValueError:
        raise InvalidRow(f"step is not an integer: {step_text!r}") from None
    if step < 0:
        raise InvalidRow(f"step must be >= 0, got {step}")
    return ParsedRow(
        line_number=line_number,
        time_key=step,
        transaction_id=f"paysim-{line_number}",
        user_id=_required_text(row, "nameOrig"),
        amount=parse_amount(_required_text(row, "amount")),
        is_fraud=parse_label(_required_text(row, "isFraud")),
        merchant_id=_required_text(row, "nameDest"),
        country=None,
        channel=_required_text(row, "type").lower(),
    )


def _optional_number(row: dict[str, str], column: str) -> float | None:
    text = _optional_text(row, column)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidRow(f"{column} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise InvalidRow(f"{column} must be finite, got {text!r}")
    return value


def parse_generic_row(
    row: dict[str, str],
    line_number: int,
    fields: FieldMapping = DEFAULT_FIELDS,
    label_column: str = DEFAULT_LABEL_COLUMN,
) -> ParsedRow:
    """Validate one generic row, its columns named by ``fields``; ``time_key`` is epoch ms, or
    the step when the timestamp unit is a step (hours, days)."""
    label = _optional_text(row, label_column)
    stamp, unit = _required_text(row, fields.timestamp), fields.timestamp_unit
    time_key = (
        parse_step(stamp, fields.timestamp)
        if unit in STEP_UNITS
        else parse_timestamp_ms(stamp, unit)
    )
    latitude = _optional_number(row, fields.latitude)
    longitude = _optional_number(row, fields.longitude)
    if (latitude is None) != (longitude is None):
        latitude = longitude = None  # half a position is no position, as the worker reads it
    return ParsedRow(
        line_number=line_number,
        time_key=time_key,
        transaction_id=_optional_text(row, fields.transaction_id) or f"csv-{line_number}",
        user_id=_required_text(row, fields.user_id),
        amount=parse_amount(_required_text(row, fields.amount)),
        is_fraud=None if label is None else parse_label(label),
        merchant_id=_optional_text(row, fields.merchant),
        country=_optional_text(row, fields.country),
        channel=_optional_text(row, fields.channel),
        x=longitude,
        y=latitude,
        category=_optional_text(row, fields.category),
        scenario=_optional_text(row, "scenario"),
    )


def required_columns(
    csv_format: CsvFormat, fields: FieldMapping = DEFAULT_FIELDS
) -> tuple[str, ...]:
    """The columns a file of ``csv_format`` must have (generic: as ``fields`` names them)."""
    if csv_format == "paysim":
        return PAYSIM_REQUIRED
    return (fields.user_id, fields.amount, fields.timestamp)


def _scenario_for(is_fraud: bool | None, named: str | None = None) -> str:
    if is_fraud is None:
        return UNLABELED_SCENARIO
    return (named or CSV_FRAUD_SCENARIO) if is_fraud else NORMAL_SCENARIO


class CsvReplay:
    """A CSV file as a time-ordered, re-iterable stream of :class:`LabeledTransaction`.

    >>> replay = CsvReplay(Path("paysim.csv.gz"), "paysim")  # doctest: +SKIP
    >>> replay.scan().bad_row_count  # doctest: +SKIP
    0
    """

    def __init__(
        self,
        path: Path,
        csv_format: CsvFormat,
        start_time: datetime = DEFAULT_START_TIME,
        fields: FieldMapping = DEFAULT_FIELDS,
        label_column: str = DEFAULT_LABEL_COLUMN,
        require_labels: bool = False,
    ) -> None:
        """``require_labels``: a generic CSV must have its label column even under its default
        name (evaluating needs labels: without them every row would count as legit)."""
        if csv_format not in CSV_FORMATS:
            raise CsvFormatError(f"unknown CSV format {csv_format!r}; known: {CSV_FORMATS}")
        self.path = Path(path)
        self.csv_format: CsvFormat = csv_format
        self.start_ms = epoch_ms(start_time)
        self.fields = fields
        self.label_column = label_column
        self.require_labels = require_labels
        self._scan: CsvScan | None = None

    def _parse(self, row: dict[str, str], line_number: int) -> ParsedRow:
        if self.csv_format == "paysim":
            return parse_paysim_row(row, line_number)
        return parse_generic_row(row, line_number, self.fields, self.label_column)

    def _rows(self) -> Iterator[ParsedRow | BadRow]:
        """Every data row of the file, validated, in file order."""
        parse = self._parse
        with open_text(self.path) as text:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                raise CsvFormatError(f"{self.path} is empty")
            columns = [name.strip() for name in header]
            required = required_columns(self.csv_format, self.fields)
            if (
                self.require_labels
                and self.csv_format == "generic"
                and self.label_column not in columns
                and all(column in columns for column in required)
            ):
                raise CsvFormatError(
                    f"{self.path}: no {self.label_column!r} column, so no fraud labels to "
                    "evaluate against; name the CSV's label column with --label-column "
                    f"(columns: {','.join(columns)})"
                )
            if self.csv_format == "generic" and self.label_column != DEFAULT_LABEL_COLUMN:
                required = (*required, self.label_column)  # named on purpose: must be there
            missing = [c for c in required if c not in columns]
            if missing:
                raise CsvFormatError(
                    f"{self.path}: header lacks {', '.join(missing)} "
                    f"for format {self.csv_format!r} (header: {','.join(columns)})"
                )
            for fields in reader:
                line_number = reader.line_num
                if not any(value.strip() for value in fields):
                    continue  # blank line
                if len(fields) != len(columns):
                    yield BadRow(line_number, f"expected {len(columns)} fields, got {len(fields)}")
                    continue
                try:
                    yield parse(dict(zip(columns, fields, strict=True)), line_number)
                except InvalidRow as exc:
                    yield BadRow(line_number, str(exc))

    def scan(self) -> CsvScan:
        """Validate the whole file once (cached): bad rows, order, rows per step.

        Raises :class:`CsvFormatError` for a generic file read with the ``auto`` timestamp
        unit whose every timestamp falls before 1973: a step counter, which would otherwise
        replay as a few minutes of 1970.
        """
        if self._scan is not None:
            return self._scan
        scan = CsvScan()
        previous_key: int | None = None
        latest = 0
        stepped = self.step_ms is not None
        for row in self._rows():
            scan.data_rows += 1
            if isinstance(row, BadRow):
                scan.bad_row_count += 1
                if len(scan.bad_rows) < MAX_REPORTED_BAD_ROWS:
                    scan.bad_rows.append(row)
                continue
            if previous_key is not None and row.time_key < previous_key:
                scan.in_time_order = False
            previous_key = row.time_key
            latest = max(latest, row.time_key)
            if stepped:
                scan.rows_per_step[row.time_key] += 1
        if self._guesses_epoch and scan.good_rows and latest < STEP_COUNTER_BELOW_MS:
            raise CsvFormatError(
                f"{self.path}: every {self.fields.timestamp} lies before 1973 read as epoch "
                f"seconds (the largest is {latest / 1000:g} s): a step counter? Set "
                "FRAUDSTREAM_FIELD_TIMESTAMP_UNIT=h or d for steps of an hour or a day, or s "
                "to read them as epoch seconds"
            )
        self._scan = scan
        return scan

    @property
    def step_ms(self) -> int | None:
        """Milliseconds per step when the file numbers steps (PaySim, or generic in h/d)."""
        if self.csv_format == "paysim":
            return MILLISECONDS_PER_HOUR
        unit = self.fields.timestamp_unit
        return round(UNIT_SECONDS[unit] * 1000) if unit in STEP_UNITS else None

    @property
    def _guesses_epoch(self) -> bool:
        return self.csv_format == "generic" and self.fields.timestamp_unit == "auto"

    def __iter__(self) -> Iterator[LabeledTransaction]:
        scan = self.scan()
        records = self._records(scan)
        if scan.in_time_order:
            return records
        return iter(sorted(records, key=lambda record: record.timestamp_ms))  # stable

    def _records(self, scan: CsvScan) -> Iterator[LabeledTransaction]:
        rank_in_step: Counter[int] = Counter()
        step_ms = self.step_ms
        for row in self._rows():
            if isinstance(row, BadRow):
                continue
            if step_ms is not None:
                step = row.time_key
                # Spread the step's rows evenly over its length, in file order.
                offset = rank_in_step[step] * step_ms // scan.rows_per_step[step]
                rank_in_step[step] += 1
                timestamp_ms = self.start_ms + step * step_ms + offset
            else:
                timestamp_ms = row.time_key
            yield LabeledTransaction(
                transaction_id=row.transaction_id,
                user_id=row.user_id,
                amount=row.amount,
                timestamp_ms=timestamp_ms,
                scenario=_scenario_for(row.is_fraud, row.scenario),
                is_fraud=row.is_fraud,
                merchant_id=row.merchant_id,
                country=row.country,
                channel=row.channel,
                x=row.x,
                y=row.y,
                category=row.category,
            )


def read_csv(
    path: Path, csv_format: CsvFormat, start_time: datetime = DEFAULT_START_TIME
) -> tuple[list[LabeledTransaction], CsvScan]:
    """Convenience for small files: every record in time order, and the scan report."""
    replay = CsvReplay(path, csv_format, start_time)
    return list(replay), replay.scan()
