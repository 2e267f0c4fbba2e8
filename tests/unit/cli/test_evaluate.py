"""Detection quality on the default labeled stream stays at the issue's targets (offline core)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from fraudstream.cli import evaluate as evaluate_module
from fraudstream.cli.evaluate import EvaluateOptions, StreamSource, evaluate, labeled_stream, main
from fraudstream.core.fields import OPTIONAL_ROLES
from fraudstream.core.quality import TARGETS
from fraudstream.settings import Settings
from producer.banksim import BanksimParameters, BanksimSimulator
from producer.csv_replay import CsvReplay
from producer.paysim import PaysimParameters, PaysimSimulator
from producer.records import LabeledTransaction
from producer.sparkov import SparkovParameters, SparkovSimulator
from producer.tabformer import TabformerParameters, TabformerSimulator


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped defaults, whatever FRAUDSTREAM_ variables the shell has."""
    for name in list(os.environ):
        if name.startswith("FRAUDSTREAM_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("default_settings")
def test_default_stream_meets_every_quality_target_after_calibration() -> None:
    """A regression guard for the detector: the same stream the README's report comes from."""
    report = evaluate(EvaluateOptions(offline=True, as_json=True))
    after = report["runs"]["noLabels"]["afterWarmUp"]
    figures = {name: after[name] for name in TARGETS}
    assert all(after["targets"].values()), figures
    assert set(after["targets"]) == set(TARGETS)


@pytest.mark.usefixtures("default_settings")
def test_a_labeled_csv_in_its_own_names_is_evaluated_through_the_input_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 ordinary payments of 30 cards, and two frauds above the amount rule's 10,000.
    rows = ["card,amt,ts,label,scenario"]
    rows += [f"c{i},{20 + i},2024-01-01T00:{i:02d}:00Z,0," for i in range(30)]
    rows += ["c3,15000,2024-01-01T01:00:00Z,1,cash_out", "c4,12000,2024-01-01T01:01:00Z,1,cash_out"]
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("FRAUDSTREAM_FIELD_USER_ID", "card")
    monkeypatch.setenv("FRAUDSTREAM_FIELD_AMOUNT", "amt")
    monkeypatch.setenv("FRAUDSTREAM_FIELD_TIMESTAMP", "ts")
    options = EvaluateOptions(offline=True, as_json=True, generator="csv", csv=path, skip_days=0)
    report = evaluate(options)
    assert report["stream"] == {
        "generator": "csv",
        "file": str(path),
        "format": "generic",
        "labels": None,
    }
    run = report["runs"]["noLabels"]
    assert run["decisions"] == 32
    after = run["afterWarmUp"]
    assert (after["transactions"], after["frauds"], after["alerts"]) == (32, 2, 2)
    assert (after["precision"], after["recall"]) == (1.0, 1.0)
    assert after["recallByScenario"] == {"cash_out": 1.0}


@pytest.mark.usefixtures("default_settings")
def test_labels_for_part_of_the_frauds_say_what_the_worker_assumes_of_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["userId,amount,timestamp,label"]
    rows += [f"u{i},{20 + i},2024-01-01T00:{i:02d}:00Z,0" for i in range(30)]
    rows += ["u3,15000,2024-01-01T01:00:00Z,1"]
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows) + "\n")
    options = EvaluateOptions(
        offline=True, generator="csv", csv=path, skip_days=0, label_delay_ms=3_600_000
    )
    report = evaluate(replace(options, label_share=0.5))
    assert report["stream"]["labels"] == {"delayDays": 1 / 24, "share": 0.5, "coverageSetting": 1.0}
    assert "50% of the frauds get a label, and the worker assumes 100%" in capsys.readouterr().err
    evaluate(options)
    assert "get a label" not in capsys.readouterr().err, "all reported: nothing to say"


@pytest.mark.usefixtures("default_settings")
def test_a_stream_in_kaggles_column_names_is_judged_exactly_as_the_generator_sends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every role mapped (merchant, category, channel, country, coordinates; epoch seconds for
    the time): the CSV replay feeds the detector the very transactions the generator does."""
    stream = list(SparkovSimulator(SparkovParameters(customers=60, days=25, seed=2)))
    names = "trans_num,cc_num,amt,unix_time,merchant,category,country,txn_channel,lat,long"
    lines = [f"{names},is_fraud,scenario"]
    for tx in stream:
        assert tx.timestamp_ms % 1000 == 0  # whole seconds, as Kaggle's unix_time
        row = (tx.transaction_id, tx.user_id, tx.amount, tx.timestamp_ms // 1000, tx.merchant_id)
        row += (tx.category, tx.country, tx.channel, tx.y, tx.x, int(bool(tx.is_fraud)))
        lines.append(",".join("" if v is None else f'"{v}"' for v in row) + f",{tx.scenario}")
    path = tmp_path / "fraudTrain.csv"
    path.write_text("\n".join(lines) + "\n")
    roles = {"USER_ID": "cc_num", "AMOUNT": "amt", "TIMESTAMP": "unix_time"}
    roles |= {"TRANSACTION_ID": "trans_num", "MERCHANT": "merchant", "CATEGORY": "category"}
    roles |= {"CHANNEL": "txn_channel", "LATITUDE": "lat", "LONGITUDE": "long"}
    generated = evaluate(
        EvaluateOptions(offline=True, as_json=True, generator="sparkov", users=60, days=25, seed=2)
    )["runs"]["noLabels"]
    for role, column in roles.items():
        monkeypatch.setenv(f"FRAUDSTREAM_FIELD_{role}", column)
    fields = Settings().fields.mapping()
    assert list(CsvReplay(path, "generic", fields=fields, label_column="is_fraud")) == stream
    options = EvaluateOptions(
        offline=True, as_json=True, generator="csv", csv=path, label_column="is_fraud"
    )
    replayed = evaluate(replace(options, skip_days=20))["runs"]["noLabels"]
    assert replayed["decisions"] == generated["decisions"] == len(stream)
    assert generated["afterWarmUp"]["alerts"] > 0
    for part in ("afterWarmUp", "wholeStream", "ranking", "ablation"):
        assert replayed[part] == generated[part], part


def _banksim_like(path: Path) -> Path:
    """BankSim's shape: a day counter for the time, quoted ids, a fraud column."""
    lines = ["step,customer,age,merchant,category,amount,fraud"]
    for day in range(10):
        for card in range(20):
            lines.append(f"{day},'C{card:03d}','4','M{card % 5}','es_food',{25 + card},0")
    lines.append("9,'C007','4','M9','es_travel',15000,1")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.usefixtures("default_settings")
def test_a_stream_that_counts_days_is_evaluated_with_its_timestamp_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _banksim_like(tmp_path / "banksim.csv")
    for role, column in {
        "USER_ID": "customer",
        "TIMESTAMP": "step",
        "MERCHANT": "merchant",
    }.items():
        monkeypatch.setenv(f"FRAUDSTREAM_FIELD_{role}", column)
    options = EvaluateOptions(
        offline=True, as_json=True, generator="csv", csv=path, label_column="fraud", skip_days=3
    )
    monkeypatch.setenv("FRAUDSTREAM_FIELD_TIMESTAMP_UNIT", "d")
    run = evaluate(options)["runs"]["noLabels"]
    assert run["decisions"] == 201
    after = run["afterWarmUp"]  # days 3-9: seven days of 20 payments, and the fraud
    assert (after["transactions"], after["frauds"], after["alerts"]) == (141, 1, 1)
    monkeypatch.setenv("FRAUDSTREAM_FIELD_TIMESTAMP_UNIT", "auto")  # 0-9 s of 1970: refused
    assert main(options) == 2
    assert "FRAUDSTREAM_FIELD_TIMESTAMP_UNIT=h or d" in capsys.readouterr().err


@pytest.mark.usefixtures("default_settings")
def test_the_offline_pass_says_how_far_it_got(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(evaluate_module, "OFFLINE_PROGRESS_SECONDS", 0.0)  # after every batch
    settings = Settings()
    records = evaluate_module.labeled_stream(EvaluateOptions(offline=True, count=1200), settings)
    seen: list[int] = []
    evaluate_module.run_offline(records, settings, None, lambda done, _: seen.append(done))
    assert seen == [500, 1000, 1200]
    assert main(EvaluateOptions(offline=True, count=1200)) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("offline")]
    assert [line.split(" transactions")[0] for line in lines] == [
        "offline: 500",
        "offline: 1,000",
        "offline: 1,200",
    ]


def test_a_csv_that_lacks_the_mapped_columns_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("customer,value,when\nc1,5,2024-01-01T00:00:00Z\n")
    options = EvaluateOptions(offline=True, as_json=True, generator="csv", csv=path)
    assert main(options) == 2


@pytest.mark.usefixtures("default_settings")
@pytest.mark.parametrize("label_column", ["label", "is_fraud"])
def test_a_csv_without_its_label_column_is_refused_not_scored_as_all_legit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], label_column: str
) -> None:
    """Without labels every row would count as legit and the figures would be made up."""
    path = tmp_path / "mine.csv"
    path.write_text("userId,amount,timestamp,fraud\nu1,15000,2024-01-01T00:00:00Z,1\n")
    options = EvaluateOptions(
        offline=True, generator="csv", csv=path, skip_days=0, label_column=label_column
    )
    assert main(options) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err.strip().splitlines()[-1]
    assert error.startswith(f"error: {path}: no '{label_column}' column")
    assert "--label-column" in error
    assert main(replace(options, label_column="fraud")) == 0  # named: evaluated


@pytest.mark.usefixtures("default_settings")
@pytest.mark.parametrize(
    ("generator", "days", "stream", "skipped"),
    [
        ("sparkov", 25, SparkovSimulator(SparkovParameters(customers=60, days=25, seed=2)), 20),
        ("banksim", 35, BanksimSimulator(BanksimParameters(customers=60, days=35, seed=2)), 30),
        ("tabformer", 25, TabformerSimulator(TabformerParameters(users=60, days=25, seed=2)), 21),
        ("paysim", 8, PaysimSimulator(PaysimParameters(users=60, days=8, seed=2)), 5),
    ],
)
def test_a_stream_sized_in_users_and_days_is_evaluated_after_its_warm_up_days(
    generator: StreamSource, days: int, stream: Iterable[LabeledTransaction], skipped: int
) -> None:
    options = EvaluateOptions(
        offline=True, as_json=True, generator=generator, users=60, days=days, seed=2
    )
    report = evaluate(options)
    assert report["stream"] == {
        "generator": generator,
        "users": 60,
        "days": days,
        "seed": 2,
        "labels": None,
    }
    run = report["runs"]["noLabels"]
    count = sum(1 for _ in stream)
    assert run["decisions"] == run["wholeStream"]["transactions"] == count
    assert run["skipped"] == f"first {skipped} days"
    assert 0 < run["afterWarmUp"]["transactions"] < count


def test_dropped_fields_leave_every_message_and_the_truth_stays() -> None:
    options = EvaluateOptions(count=300, drop_fields=("merchant", "country"))
    stripped = list(labeled_stream(options, Settings()))
    full = list(labeled_stream(replace(options, drop_fields=()), Settings()))
    assert [(r.transaction_id, r.is_fraud) for r in stripped] == [
        (r.transaction_id, r.is_fraud) for r in full
    ]
    assert any({"merchantId", "country"} <= r.message().keys() for r in full)
    assert not any({"merchantId", "country"} & r.message().keys() for r in stripped)


@pytest.mark.usefixtures("default_settings")
@pytest.mark.parametrize("factor", [100.0, 0.01])
def test_a_stream_in_cents_or_in_hundreds_is_judged_as_in_its_own_unit(factor: float) -> None:
    """Every amount x100 or x0.01 (the amount threshold with it), labels 7 days late: the
    detector reads amounts in the power of ten that makes the typical payment tens, so users,
    categories, merchants, segments and the classifier see the same stream and decide alike.
    Before, x0.01 flooded this stream with false alerts (docs/detection.md: Amounts in another
    unit)."""
    options = EvaluateOptions(
        offline=True,
        as_json=True,
        generator="sparkov",
        users=120,
        days=30,
        seed=3,
        label_delay_ms=7 * 86_400_000,
        without_labels=True,
    )
    own = evaluate(options)["runs"]
    other = evaluate(replace(options, amount_factor=factor))
    assert other["stream"]["amountFactor"] == factor
    for name in ("labels", "noLabels"):
        ours, theirs = own[name], other["runs"][name]
        assert (ours["amountUnit"], theirs["amountUnit"]) == (1.0, factor)
        assert ours["classifier"] == theirs["classifier"]
        for figures in ("afterWarmUp", "wholeStream"):
            mine = {k: v for k, v in ours[figures].items() if k != "latencyMs"}
            assert mine == {k: v for k, v in theirs[figures].items() if k != "latencyMs"}
        assert ours["ranking"] == theirs["ranking"]
    assert own["noLabels"]["wholeStream"]["alerts"] > 10  # the stream has something to say


@pytest.mark.usefixtures("default_settings")
def test_chargebacks_spread_over_weeks_still_teach_the_classifier_their_frauds() -> None:
    """Labels 2-30 days after their frauds: with the default late window a label that comes
    after its transaction matured as legit corrects it, rather than going to the DLQ."""
    frauds = sum(
        1 for r in SparkovSimulator(SparkovParameters(customers=200, days=60, seed=1)) if r.is_fraud
    )
    options = EvaluateOptions(
        generator="sparkov",
        users=200,
        days=60,
        seed=1,
        offline=True,
        as_json=True,
        label_delay_ms=2 * 86_400_000,
        label_delay_max_ms=30 * 86_400_000,
        without_labels=False,
    )
    report = evaluate(options)
    assert report["stream"]["labels"]["maxDelayDays"] == 30.0
    learned = report["runs"]["labels"]["classifier"]["frauds"]
    assert learned >= 0.6 * frauds, (learned, frauds)  # a one-day late window: 29 of 134


@pytest.mark.usefixtures("default_settings")
def test_payments_that_arrive_out_of_order_are_not_read_as_bursts() -> None:
    """The same stream with arrivals up to ten minutes late: each late payment is judged by
    its distance from its neighbours, so the false alerts stay as few as in order."""
    options = EvaluateOptions(offline=True, as_json=True)
    in_order = evaluate(options)["runs"]["noLabels"]["afterWarmUp"]
    report = evaluate(replace(options, disorder_seconds=600.0))
    assert report["stream"]["disorderSeconds"] == 600.0
    late = report["runs"]["noLabels"]["afterWarmUp"]
    assert late["falsePositives"] <= in_order["falsePositives"] + 8, (in_order, late)
    assert late["precision"] >= 0.95 and late["recall"] >= 0.85, late


@pytest.mark.usefixtures("default_settings")
def test_a_stream_without_countries_and_merchants_is_judged_without_them() -> None:
    """What a stream lacking optional fields loses: the unfamiliar-place rule needs a new
    country and a new merchant, so without them it never fires."""
    options = EvaluateOptions(offline=True, as_json=True, count=6_000, users=300)
    full = evaluate(options)["runs"]["noLabels"]
    report = evaluate(replace(options, drop_fields=("country", "merchant")))
    assert report["stream"]["droppedFields"] == ["country", "merchant"]
    run = report["runs"]["noLabels"]
    assert run["decisions"] == full["decisions"] == 6_000
    assert full["wholeStream"]["alertsByReason"].get("unfamiliar_place", 0) > 0
    assert "unfamiliar_place" not in run["wholeStream"]["alertsByReason"]


def test_every_optional_role_can_be_dropped_and_takes_exactly_its_fields() -> None:
    record = LabeledTransaction(
        "t", "u", 5.0, 0, "normal", False, "M", "FR", "pos", x=1.0, y=2.0, category="food"
    )
    fields = {
        "merchant": {"merchantId"},
        "country": {"country"},
        "channel": {"channel"},
        "category": {"category"},
        "coordinates": {"latitude", "longitude"},
    }
    assert set(fields) == set(OPTIONAL_ROLES)
    for role in OPTIONAL_ROLES:
        assert record.message().keys() - record.without([role]).message().keys() == fields[role]
