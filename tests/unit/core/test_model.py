"""Half-Space Trees scorer and the adaptive decision threshold."""

from __future__ import annotations

import random

from fraudstream.core.model import AdaptiveThreshold, HalfSpaceTreesScorer, HSTParams


def normal_point(rng: random.Random) -> dict[str, float]:
    return {
        "habit_up": rng.uniform(0.0, 0.05),
        "habit_down_w": rng.uniform(0.0, 0.05),
        "velocity": rng.uniform(0.0, 0.1),
        "new_country": 0.0,
    }


def test_not_warmed_up_until_warmup_events_are_learned() -> None:
    scorer = HalfSpaceTreesScorer(HSTParams(window_size=50), warmup=50)
    rng = random.Random(0)
    for _ in range(49):
        scorer.learn(normal_point(rng))
    assert not scorer.warmed_up
    scorer.learn(normal_point(rng))
    assert scorer.warmed_up


def test_outlier_scores_higher_than_normal_points_after_training() -> None:
    scorer = HalfSpaceTreesScorer(HSTParams(window_size=200), warmup=200)
    rng = random.Random(1)
    for _ in range(600):
        scorer.learn(normal_point(rng))
    normal = [scorer.score(normal_point(rng)) for _ in range(50)]
    outlier = {
        "habit_up": 0.0,
        "habit_down_w": 0.0,
        "velocity": 0.9,
        "new_country": 0.0,
    }
    assert scorer.score(outlier) > max(normal)


def test_fixed_threshold_ignores_the_score_distribution() -> None:
    threshold = AdaptiveThreshold(floor=0.7, quantile=None)
    for _ in range(1000):
        threshold.observe(0.99)
    assert threshold.value == 0.7


def test_adaptive_threshold_follows_the_recent_quantile_but_not_below_its_floor() -> None:
    threshold = AdaptiveThreshold(floor=0.3, quantile=0.9, window=100, refresh_every=10)
    for i in range(100):
        threshold.observe(i / 100)
    assert abs(threshold.value - 0.9) < 0.02
    for _ in range(100):
        threshold.observe(0.01)
    assert threshold.value == 0.3
