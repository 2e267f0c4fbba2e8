"""Worker statistics: latency percentiles and the Prometheus rendering."""

from __future__ import annotations

from fraudstream.worker.stats import LatencyHistogram, WorkerStats, prometheus_text


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
