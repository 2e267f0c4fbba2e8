"""Argument types shared by the ``fraudstream`` and ``python -m producer`` command lines."""

from __future__ import annotations

import argparse
import math


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
