"""Card numbers (PANs) never leave the worker in clear: mask them in alerts, dead letters, logs."""

from __future__ import annotations

import re
from typing import Any

#: A run of digit groups joined by single spaces or dashes (as people type card numbers).
_DIGIT_GROUPS = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*(?!\d)")
_GROUP = re.compile(r"\d+")
#: A card number's length.
PAN_DIGITS = range(13, 20)
#: The fewest digits of a card number's groups but its last, as cards print them.
MIN_GROUP = 4
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
    """Mask every Luhn-valid card number (13 to 19 digits, whole groups) in free text.

    A number followed by another one (a security code, an expiry) is masked too: within a run
    of digit groups the longest Luhn-valid span of whole groups from each group on is.

    >>> mask_text("card 4111 1111 1111 1111 123, exp 12 26")
    'card ************1111 123, exp 12 26'
    >>> mask_text("pan 4111111111111111 12/26; order 4111111111111112")
    'pan ************1111 12/26; order 4111111111111112'
    """
    if len(text) < 13:  # too short to hold a card number (most ids, codes and names)
        return text
    return _DIGIT_GROUPS.sub(_mask_groups, text)


def _mask_groups(run: re.Match[str]) -> str:
    """A run of digit groups with each card number in it masked."""
    text = run.group(0)
    groups = [(m.start(), m.end(), m.group(0)) for m in _GROUP.finditer(text)]
    out: list[str] = []
    done = 0  # text[:done] is in ``out`` already
    i = 0
    while i < len(groups):
        span = _card_at(groups, i)
        if span is None:
            i += 1
            continue
        last, digits = span
        start, end = groups[i][0], groups[last][1]
        out += [text[done:start], mask_pan(digits)]
        done, i = end, last + 1
    return "".join(out) + text[done:] if out else text


def _card_at(groups: list[tuple[int, int, str]], first: int) -> tuple[int, str] | None:
    """The last group and the digits of the longest card number starting at group ``first``.

    Every group of a card number but its last has at least :data:`MIN_GROUP` digits (4-4-4-4,
    4-6-5, 4-4-4-4-3, or one block), so a short number before one (``12 26 4111 ...``) is not
    read as its start.
    """
    digits = ""
    found: tuple[int, str] | None = None
    for j in range(first, len(groups)):
        if len(groups[j - 1 if j > first else j][2]) < MIN_GROUP:
            break
        digits += groups[j][2]
        if len(digits) > PAN_DIGITS[-1]:
            break
        if len(digits) in PAN_DIGITS and luhn_valid(digits):
            found = (j, digits)
    return found


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
