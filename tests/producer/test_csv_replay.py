"""Specification of CSV replay: PaySim and generic mappings, order, labels, bad rows."""

from __future__ import annotations

import gzip
import itertools
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from fraudstream.core.fields import FieldMapping
from producer.csv_replay import PAYSIM_COLUMNS, CsvFormatError, CsvReplay, read_csv
from producer.records import CSV_FRAUD_SCENARIO, NORMAL_SCENARIO, UNLABELED_SCENARIO, epoch_ms

START = datetime(2024, 12, 4, tzinfo=timezone.utc)
HOUR_MS = 3_600_000

#: PaySim-shaped rows, deliberately out of step order; line numbers count the header as 1.
PAYSIM_ROWS = [
    "2,PAYMENT,9839.64,C1231006815,170136.0,160296.36,M1979787155,0.0,0.0,0,0",  # line 2
    "1,TRANSFER,181.0,C1305486145,181.0,0.0,C553264065,0.0,0.0,1,0",  # line 3
    "1,PAYMENT,1864.28,C1666544295,21249.0,19384.72,M2044282225,0.0,0.0,0,0",  # line 4
    "3,CASH_OUT,229133.94,C905080434,15325.0,0.0,C476402209,5083.0,51513.44,0,0",  # line 5
    "2,DEBIT,5337.77,C712410124,41720.0,36382.23,C195600860,41898.0,40348.79,0,0",  # line 6
]


def write_paysim(path: Path, rows: list[str], compress: bool = False) -> Path:
    text = ",".join(PAYSIM_COLUMNS) + "\n" + "\n".join(rows) + "\n"
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture
def paysim_file(tmp_path: Path) -> Path:
    return write_paysim(tmp_path / "paysim.csv", PAYSIM_ROWS)


def test_paysim_replay_is_in_step_order_and_keeps_file_order_within_a_step(
    paysim_file: Path,
) -> None:
    records, scan = read_csv(paysim_file, "paysim", START)
    assert not scan.in_time_order
    assert [r.transaction_id for r in records] == [
        "paysim-3",
        "paysim-4",
        "paysim-2",
        "paysim-6",
        "paysim-5",
    ]
    assert all(a.timestamp_ms < b.timestamp_ms for a, b in itertools.pairwise(records))


def test_paysim_step_is_the_hour_since_start_time(paysim_file: Path) -> None:
    records, _ = read_csv(paysim_file, "paysim", START)
    steps = {"paysim-3": 1, "paysim-4": 1, "paysim-2": 2, "paysim-6": 2, "paysim-5": 3}
    for record in records:
        hour_start = epoch_ms(START) + steps[record.transaction_id] * HOUR_MS
        assert hour_start <= record.timestamp_ms < hour_start + HOUR_MS


def test_paysim_columns_map_to_user_merchant_channel_and_amount(paysim_file: Path) -> None:
    records, _ = read_csv(paysim_file, "paysim", START)
    first = records[0]
    assert (first.user_id, first.merchant_id, first.channel, first.amount) == (
        "C1305486145",
        "C553264065",
        "transfer",
        181.0,
    )
    assert first.country is None
    assert "country" not in orjson.loads(first.message_json())


def test_paysim_is_fraud_becomes_the_ground_truth_label(paysim_file: Path) -> None:
    records, _ = read_csv(paysim_file, "paysim", START)
    truth = {r.transaction_id: r.ground_truth() for r in records}
    assert truth["paysim-3"] == {
        "transactionId": "paysim-3",
        "userId": "C1305486145",
        "scenario": CSV_FRAUD_SCENARIO,
        "is_fraud": True,
    }
    others = [t for tx_id, t in truth.items() if tx_id != "paysim-3"]
    assert all(t["is_fraud"] is False and t["scenario"] == NORMAL_SCENARIO for t in others)


def test_labels_never_travel_in_the_replayed_message_json(paysim_file: Path) -> None:
    records, _ = read_csv(paysim_file, "paysim", START)
    for record in records:
        doc = orjson.loads(record.message_json())
        assert set(doc) == {
            "transactionId",
            "userId",
            "amount",
            "timestamp",
            "merchantId",
            "channel",
        }


def test_gzipped_paysim_replays_exactly_like_the_plain_file(
    tmp_path: Path, paysim_file: Path
) -> None:
    compressed = write_paysim(tmp_path / "paysim.csv.gz", PAYSIM_ROWS, compress=True)
    plain, _ = read_csv(paysim_file, "paysim", START)
    unzipped, _ = read_csv(compressed, "paysim", START)
    assert unzipped == plain


def test_rows_of_one_step_are_spread_evenly_over_its_hour(tmp_path: Path) -> None:
    rows = [f"0,PAYMENT,{n}.0,C{n},0,0,M{n},0,0,0,0" for n in range(4)]
    records, scan = read_csv(write_paysim(tmp_path / "p.csv", rows), "paysim", START)
    assert scan.in_time_order
    offsets = [r.timestamp_ms - epoch_ms(START) for r in records]
    assert offsets == [0, HOUR_MS // 4, HOUR_MS // 2, 3 * HOUR_MS // 4]


def test_replay_is_deterministic_and_re_iterable(paysim_file: Path) -> None:
    replay = CsvReplay(paysim_file, "paysim", START)
    assert list(replay) == list(replay) == list(CsvReplay(paysim_file, "paysim", START))


def test_paysim_bad_rows_are_skipped_and_reported(tmp_path: Path) -> None:
    rows = [
        *PAYSIM_ROWS[:2],
        "x,PAYMENT,1.0,C1,0,0,M1,0,0,0,0",  # line 4: step not a number
        "1,PAYMENT,1.0,C1,0,0,M1,0,0,2,0",  # line 5: isFraud not 0/1
        "1,PAYMENT,1.0",  # line 6: too few fields
    ]
    records, scan = read_csv(write_paysim(tmp_path / "bad.csv", rows), "paysim", START)
    assert len(records) == 2
    assert [(b.line_number, b.reason.split()[0]) for b in scan.bad_rows] == [
        (4, "step"),
        (5, "label"),
        (6, "expected"),
    ]


GENERIC_WITH_BAD_ROWS = """userId,amount,timestamp,label
alice,12.50,2024-12-04T10:00:00Z,0
bob,not-a-number,2024-12-04T10:01:00Z,0
carol,99.99,2024-12-04T09:00:00Z,true
,5.00,2024-12-04T10:02:00Z,0
dave,5.00,yesterday,0
erin,-3.00,2024-12-04T10:03:00Z,0
frank,7.00,2024-12-04T10:04:00Z,maybe
gina,8.00,2024-12-04T10:05:00Z
hank,1e400,2024-12-04T10:06:00Z,1

ivan,20000,1733306400,1
"""


def test_generic_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "generic.csv"
    path.write_text(GENERIC_WITH_BAD_ROWS)
    records, scan = read_csv(path, "generic")
    assert [r.user_id for r in records] == ["carol", "alice", "ivan"]
    assert [b.line_number for b in scan.bad_rows] == [3, 5, 6, 7, 8, 9, 10]
    assert scan.bad_row_count == 7
    report = scan.describe()
    assert "line 3: 'amount' must be a number" in report
    assert "line 5: userId is empty" in report
    assert "line 9: expected 4 fields, got 3" in report


def test_generic_labels_accept_zero_one_true_false(tmp_path: Path) -> None:
    path = tmp_path / "generic.csv"
    path.write_text(GENERIC_WITH_BAD_ROWS)
    records, _ = read_csv(path, "generic")
    labels = {r.user_id: (r.is_fraud, r.scenario) for r in records}
    assert labels == {
        "alice": (False, NORMAL_SCENARIO),
        "carol": (True, CSV_FRAUD_SCENARIO),
        "ivan": (True, CSV_FRAUD_SCENARIO),
    }


def test_a_label_column_reads_the_words_the_worker_reads(tmp_path: Path) -> None:
    """One vocabulary for a label, on the labels topic and in a CSV: fraud/legit and yes/no too."""
    path = tmp_path / "words.csv"
    path.write_text(
        "userId,amount,timestamp,label\n"
        "a,1,2024-12-04T10:00:00Z,Fraud\n"
        "b,2,2024-12-04T10:01:00Z,legit\n"
        "c,3,2024-12-04T10:02:00Z,YES\n"
        "d,4,2024-12-04T10:03:00Z,no\n"
        "e,5,2024-12-04T10:04:00Z,2\n"
    )
    records, scan = read_csv(path, "generic")
    assert {r.user_id: r.is_fraud for r in records} == {
        "a": True,
        "b": False,
        "c": True,
        "d": False,
    }
    assert "'fraud' or 'legit' (or 1/0, true/false, yes/no), got '2'" in scan.describe()


def test_generic_timestamps_accept_iso_and_epoch_seconds(tmp_path: Path) -> None:
    path = tmp_path / "generic.csv"
    path.write_text(GENERIC_WITH_BAD_ROWS)
    records, _ = read_csv(path, "generic")
    stamps = {r.user_id: orjson.loads(r.message_json())["timestamp"] for r in records}
    assert stamps == {
        "alice": "2024-12-04T10:00:00.000Z",
        "carol": "2024-12-04T09:00:00.000Z",
        "ivan": "2024-12-04T10:00:00.000Z",
    }


def test_generic_equal_timestamps_keep_file_order_when_sorting(tmp_path: Path) -> None:
    path = tmp_path / "ties.csv"
    path.write_text(
        "userId,amount,timestamp\n"
        "b,1,2024-12-04T10:00:00Z\n"
        "a,2,2024-12-04T10:00:00Z\n"
        "z,3,2024-12-04T09:00:00Z\n"
        "c,4,2024-12-04T10:00:00Z\n"
    )
    records, _ = read_csv(path, "generic")
    assert [r.user_id for r in records] == ["z", "b", "a", "c"]


def test_generic_without_label_column_is_unlabeled(tmp_path: Path) -> None:
    path = tmp_path / "nolabel.csv"
    path.write_text("timestamp,amount,userId\n2024-12-04T10:00:00Z,3.5,u1\n")
    (record,), _ = read_csv(path, "generic")
    assert (record.user_id, record.amount, record.is_fraud) == ("u1", 3.5, None)
    assert record.scenario == UNLABELED_SCENARIO
    assert record.transaction_id == "csv-2"


def test_generic_optional_columns_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "full.csv"
    path.write_text(
        "transactionId,userId,amount,timestamp,merchantId,country,channel,label\n"
        "t-1,u1,3.5,2024-12-04T10:00:00Z,m9,DE,pos,0\n"
    )
    (record,), _ = read_csv(path, "generic")
    assert orjson.loads(record.message_json()) == {
        "transactionId": "t-1",
        "userId": "u1",
        "amount": 3.5,
        "timestamp": "2024-12-04T10:00:00.000Z",
        "merchantId": "m9",
        "country": "DE",
        "channel": "pos",
    }


DAY_MS = 24 * HOUR_MS
#: BankSim's shape: the day as a step counter, values in single quotes.
BANKSIM = (
    "step,customer,age,merchant,category,amount,fraud\n"
    "0,'C1','4','M7','es_food',4.55,0\n"
    "0,'C2','2','M7','es_food',39.68,0\n"
    "1,'C1','4','M3','es_travel',2100.0,1\n"
)
BANKSIM_FIELDS = {"user_id": "customer", "timestamp": "step", "merchant": "merchant"}


def test_a_day_counter_replays_as_days_from_the_start_with_each_days_rows_spread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "banksim.csv"
    path.write_text(BANKSIM)
    fields = FieldMapping(**BANKSIM_FIELDS, category="category", timestamp_unit="d")
    records = list(CsvReplay(path, "generic", START, fields, label_column="fraud"))
    offsets = [r.timestamp_ms - epoch_ms(START) for r in records]
    assert offsets == [0, DAY_MS // 2, DAY_MS]
    assert [(r.user_id, r.merchant_id, r.category) for r in records] == [
        ("'C1'", "'M7'", "'es_food'"),
        ("'C2'", "'M7'", "'es_food'"),
        ("'C1'", "'M3'", "'es_travel'"),
    ]
    assert [r.is_fraud for r in records] == [False, False, True]


def test_an_hour_counter_in_a_generic_file_replays_as_paysims_steps_do(tmp_path: Path) -> None:
    path = tmp_path / "hours.csv"
    path.write_text("userId,amount,timestamp\na,1,3\nb,2,3\nc,3,5.0\n")
    records = list(CsvReplay(path, "generic", START, FieldMapping(timestamp_unit="h")))
    offsets = [r.timestamp_ms - epoch_ms(START) for r in records]
    assert offsets == [3 * HOUR_MS, 3 * HOUR_MS + HOUR_MS // 2, 5 * HOUR_MS]


def test_a_step_that_is_not_a_whole_number_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "steps.csv"
    path.write_text("userId,amount,timestamp\na,1,0\nb,2,0.5\nc,3,2024-12-04T10:00:00Z\n")
    replay = CsvReplay(path, "generic", START, FieldMapping(timestamp_unit="d"))
    assert [r.user_id for r in replay] == ["a"]
    reasons = [(bad.line_number, bad.reason) for bad in replay.scan().bad_rows]
    assert reasons == [
        (3, "timestamp must be a whole number >= 0, got '0.5'"),
        (4, "timestamp is not a step number: '2024-12-04T10:00:00Z'"),
    ]


def test_a_step_counter_read_as_epoch_seconds_is_refused_with_the_setting_to_use(
    tmp_path: Path,
) -> None:
    path = tmp_path / "banksim.csv"
    path.write_text(BANKSIM)
    replay = CsvReplay(path, "generic", START, FieldMapping(**BANKSIM_FIELDS))
    with pytest.raises(CsvFormatError, match="FRAUDSTREAM_FIELD_TIMESTAMP_UNIT=h or d"):
        replay.scan()
    explicit = FieldMapping(**BANKSIM_FIELDS, timestamp_unit="s")  # 1970 on purpose
    assert [r.timestamp_ms for r in CsvReplay(path, "generic", START, explicit)] == [0, 0, 1000]


def test_epoch_units_read_numbers_without_guessing(tmp_path: Path) -> None:
    path = tmp_path / "ms.csv"
    path.write_text("userId,amount,timestamp\na,1,1733306400000\nb,1,99000000000\n")
    records = list(CsvReplay(path, "generic", START, FieldMapping(timestamp_unit="ms")))
    assert sorted(r.timestamp_ms for r in records) == [99_000_000_000, 1_733_306_400_000]


def test_missing_required_column_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("user,amount\nu1,3\n")
    with pytest.raises(CsvFormatError, match="userId"):
        read_csv(path, "generic")


def test_the_ground_truth_can_come_from_a_column_of_another_name(tmp_path: Path) -> None:
    path = tmp_path / "sparkov.csv"
    path.write_text(
        "userId,amount,timestamp,is_fraud,label\n"
        "u1,3.5,2024-12-04T10:00:00Z,1,0\n"
        "u2,4.5,2024-12-04T10:01:00Z,0,1\n"
    )
    replay = CsvReplay(path, "generic", label_column="is_fraud")
    assert [(r.user_id, r.is_fraud) for r in replay] == [("u1", True), ("u2", False)]


def test_a_named_label_column_the_header_lacks_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("userId,amount,timestamp\nu1,3.5,2024-12-04T10:00:00Z\n")
    with pytest.raises(CsvFormatError, match="is_fraud"):
        CsvReplay(path, "generic", label_column="is_fraud").scan()
