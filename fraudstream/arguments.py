"""Argument types shared by the ``fraudstream`` and ``python -m producer`` command lines."""

from __future__ import annotations

import argparse
import math
import re
from datetime import datetime, timezone


def positive_float(text: str) -> float:
    """A finite number above 0, or the parser's own error message.

    >>> positive_float("0.01")
    0.01
    >>> positive_float("inf")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a finite number above 0: 'inf'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0.0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of at least 0, or the parser's own error message.

    >>> non_negative_float("0"), non_negative_float("2.5")
    (0.0, 2.5)
    >>> non_negative_float("-1")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a finite number >= 0: '-1'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0.0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (a count, users, days), or the parser's own error message.

    >>> positive_int("3")
    3
    >>> positive_int("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be >= 1, got 0
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of at least 0, or the parser's own error message.

    >>> non_negative_int("0")
    0
    >>> non_negative_int("-1")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a whole number >= 0, got -1
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return value


def share(text: str) -> float:
    """A share in [0, 1) (a fraud share: all-fraud traffic has no legit side), or the error.

    >>> share("0.02")
    0.02
    >>> share("1")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be in [0, 1), got 1
    """
    return _share_of(text, closed=False)


def closed_share(text: str) -> float:
    """A share in [0, 1] (a share of frauds reported: all of them is fine), or the error.

    >>> closed_share("1")
    1.0
    >>> closed_share("1.5")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be in [0, 1], got 1.5
    """
    return _share_of(text, closed=True)


def _share_of(text: str, closed: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"must be in [0, 1{']' if closed else ')'}, got {text}")
    return value


#: Milliseconds per unit of a duration such as ``7d`` or ``36h``.
DURATION_UNITS_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)


def parse_duration_ms(text: str) -> int:
    """``7d``, ``36h``, ``90m``, ``30s``, ``500ms``, ``2w`` or bare seconds, as milliseconds.

    >>> parse_duration_ms("36h"), parse_duration_ms("1.5")
    (129600000, 1500)
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration like 7d, 36h, 90m, 30s or 500ms: {text!r}")
    number, unit = match.groups()
    return round(float(number) * DURATION_UNITS_MS[(unit or "s").lower()])


def duration_ms(text: str) -> int:
    """A duration like ``7d``, ``36h`` or ``500ms`` as milliseconds, or the parser's error.

    >>> duration_ms("7d")
    604800000
    >>> duration_ms("7x")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: not a duration like 7d, 36h, 90m, 30s or 500ms: '7x'
    """
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def iso_time_ms(text: str) -> int:
    """An ISO-8601 moment (``Z`` or an offset; naive means UTC) as Unix milliseconds.

    A trailing ``Z`` becomes ``+00:00`` first: Python 3.10's ``fromisoformat`` refuses it.

    >>> iso_time_ms("2024-12-04T15:00:00Z"), iso_time_ms("2024-12-04")
    (1733324400000, 1733270400000)
    >>> iso_time_ms("yesterday")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: not ISO-8601, e.g. 2024-12-04 or 2024-12-04T15:00:00Z: 'yesterday'
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return round(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"not ISO-8601, e.g. 2024-12-04 or 2024-12-04T15:00:00Z: {text!r}"
        ) from None


def broker_url(text: str) -> str:
    """A broker URL whose every host has a usable port (a trailing ``/`` is fine), unchanged.

    >>> broker_url("kafka://localhost:9092/")
    'kafka://localhost:9092/'
    >>> broker_url("kafka://h:90x2")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: broker URL 'kafka://h:90x2': port '90x2' is not a number in 1-65535
    """
    from fraudstream.kafka.connection import bootstrap_of  # aiokafka: only when a URL is given

    try:
        bootstrap_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
