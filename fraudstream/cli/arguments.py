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
