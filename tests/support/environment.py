"""How tests treat a missing real component: fail under CI, skip on a laptop."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(reason: str) -> None:
    """A missing real component (broker, InfluxDB, openssl) fails in CI and skips elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: integration tests must not skip)", pytrace=False)
    pytest.skip(reason)
