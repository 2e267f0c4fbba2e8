"""Card numbers (PANs) never leave the worker in clear: mask them in alerts, dead letters, logs."""

from __future__ import annotations

import re
from typing import Any

#: 13 to 19 digits, optionally grouped by single spaces or dashes (as people type them).
_PAN_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
#: Digits kept in clear at the end, as PCI DSS allows for display.
VISIBLE_DIGITS = 4


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` passes the Luhn checksum every card number carries."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_pan(digits: str) -> str:
    """``4111111111111111`` -> ``************1111``."""
    return "*" * (len(digits) - VISIBLE_DIGITS) + digits[-VISIBLE_DIGITS:]


def mask_text(text: str) -> str:
    """Mask every Luhn-valid 13 to 19 digit run in free text."""
    if len(text) < 13:  # too short to hold a card number (most ids, codes and names)
        return text

    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        return mask_pan(digits) if luhn_valid(digits) else match.group(0)

    return _PAN_CANDIDATE.sub(replace, text)


def mask_value(value: Any) -> Any:
    """Mask card numbers inside a decoded JSON value (strings, and integers that are PANs)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and 13 <= len(str(value)) <= 19 and luhn_valid(str(value)):
        return mask_pan(str(value))
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return value
