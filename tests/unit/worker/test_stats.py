"""Worker statistics: latency percentiles, the Prometheus rendering, and flooding reasons."""

from __future__ import annotations

from fraudstream.worker.stats import (
    LatencyHistogram,
    WorkerStats,
    flood_warnings,
    prometheus_text,
)


def test_latency_quantiles_report_the_bucket_upper_bound() -> None:
    histogram = LatencyHistogram()
    for ms in [0.5] * 90 + [7.0] * 9 + [400.0]:
        histogram.observe(ms)
    assert histogram.quantile(0.50) == 1
    assert histogram.quantile(0.95) == 10
    assert histogram.quantile(1.0) == 500


def test_empty_histogram_has_no_quantiles() -> None:
    assert LatencyHistogram().quantile(0.99) is None


def test_latency_beyond_the_last_bucket_is_infinite() -> None:
    histogram = LatencyHistogram()
    histogram.observe(10**9)
    assert histogram.quantile(0.5) == float("inf")


def test_prometheus_text_has_counters_by_reason_and_a_cumulative_histogram() -> None:
    stats = WorkerStats()
    stats.transactions_in = 10
    stats.alerts_out = 2
    stats.alerts_by_reason.update(["amount_threshold", "amount_threshold", "half_space_trees"])
    stats.dlq_by_reason["invalid_json"] = 3
    for ms in (3.0, 30.0):
        stats.latency_ms.observe(ms)
    text = prometheus_text(stats)
    assert "fraudstream_transactions_total 10\n" in text
    assert 'fraudstream_alerts_total{reason="amount_threshold"} 2\n' in text
    assert 'fraudstream_alerts_total{reason="half_space_trees"} 1\n' in text
    assert 'fraudstream_dead_letters_total{reason="invalid_json"} 3\n' in text
    assert 'fraudstream_processing_latency_seconds_bucket{le="0.005"} 1\n' in text
    assert 'fraudstream_processing_latency_seconds_bucket{le="0.05"} 2\n' in text
    assert 'fraudstream_processing_latency_seconds_bucket{le="+Inf"} 2\n' in text
    assert "fraudstream_processing_latency_seconds_count 2\n" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.split(" ")) == 2, line


def test_rate_counts_messages_since_the_previous_call() -> None:
    stats = WorkerStats()
    stats.update_rate()
    stats.transactions_in = 50
    assert stats.update_rate() > 0
    assert stats.update_rate() == 0


def test_shadow_hits_are_counted_per_rule_in_stats_and_prometheus() -> None:
    stats = WorkerStats()
    stats.shadow_hits_by_rule.update(["big-spend", "big-spend", "night-cnp"])
    assert stats.to_dict()["shadowHitsByRule"] == {"big-spend": 2, "night-cnp": 1}
    assert stats.to_dict()["shadowHits"] == 3
    text = prometheus_text(stats)
    assert 'fraudstream_shadow_hits_total{rule="big-spend"} 2' in text
    assert 'fraudstream_shadow_hits_total{rule="night-cnp"} 1' in text


def test_a_reason_flooding_is_one_past_five_percent_once_a_thousand_transactions_came() -> None:
    early = WorkerStats(transactions_in=999)
    early.alerts_by_reason["amount_threshold"] = 999
    assert early.flooding() == {}  # too soon to tell: models still warm up
    stats = WorkerStats(transactions_in=1000)
    stats.alerts_by_reason.update({"amount_threshold": 51, "habit_spike": 50})
    assert stats.flooding() == {"amount_threshold": 0.051}  # 5.0% exactly is not past it


def test_each_flooding_reason_is_warned_about_once_the_amount_rule_with_its_setting() -> None:
    stats = WorkerStats(transactions_in=2000)
    stats.alerts_by_reason.update({"amount_threshold": 400, "velocity": 300, "habit_spike": 5})
    warned: set[str] = set()
    lines = flood_warnings(stats, warned)
    assert [line.split(" alerted on ")[0] for line in lines] == ["'amount_threshold'", "'velocity'"]
    assert "20% of the 2,000 transactions" in lines[0]
    assert "FRAUDSTREAM_AMOUNT_THRESHOLD" in lines[0]
    assert "FRAUDSTREAM_AMOUNT_THRESHOLD" not in lines[1]
    assert warned == {"amount_threshold", "velocity"}
    stats.transactions_in, stats.alerts_by_reason["deny_list"] = 4000, 900
    assert [line.split(" alerted on ")[0] for line in flood_warnings(stats, warned)] == [
        "'deny_list'"
    ]
