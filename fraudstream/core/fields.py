"""Which input field plays which role: the input mapping, so any stream's names can be used.

Only the user, the amount and the timestamp are required; every other role is optional and
a stream without it simply leaves the features built on it neutral. The defaults are the
names fraudstream has always read (``userId``, ``amount``, ...); a stream that says
``customer_id``, ``TX_AMOUNT`` and ``terminal_id`` is read by setting
``FRAUDSTREAM_FIELD_USER_ID``, ``FRAUDSTREAM_FIELD_AMOUNT`` and ``FRAUDSTREAM_FIELD_MERCHANT``.
The mapping also says how the timestamp's numbers are read (``FRAUDSTREAM_FIELD_TIMESTAMP_UNIT``),
since a simulator's step counter and an epoch in seconds look alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

#: How a numeric timestamp is read. ``auto``: epoch seconds, or milliseconds past 1e11 (the
#: year 5138 in seconds); ``s`` and ``ms``: epoch seconds or milliseconds, no guessing; ``h``
#: and ``d``: a count of hours or days, as simulators number their steps (PaySim's ``step`` is
#: the hour, BankSim's the day). ISO-8601 strings carry their own time and are read as such.
TimestampUnit = Literal["auto", "s", "ms", "h", "d"]
#: Seconds in one of each fixed unit.
UNIT_SECONDS: dict[str, float] = {"s": 1.0, "ms": 0.001, "h": 3600.0, "d": 86400.0}
#: Units that number steps rather than instants: a step holds many events at one time.
STEP_UNITS: frozenset[str] = frozenset({"h", "d"})
#: Under ``auto``, epoch numbers above this are milliseconds (1e11 s is the year 5138).
EPOCH_MS_CUTOFF = 1e11
#: The optional roles a stream may lack (``coordinates``: latitude and longitude together).
OPTIONAL_ROLES: tuple[str, ...] = ("merchant", "country", "channel", "category", "coordinates")


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """The input field name of each role, and the unit of a numeric timestamp.

    >>> mapping = FieldMapping(user_id="customer_id", amount="TX_AMOUNT")
    >>> mapping.user_id, mapping.timestamp
    ('customer_id', 'timestamp')
    >>> sorted(mapping.core_names())
    ['TX_AMOUNT', 'customer_id', 'timestamp', 'transactionId']
    """

    user_id: str = "userId"
    amount: str = "amount"
    timestamp: str = "timestamp"
    transaction_id: str = "transactionId"
    #: The merchant or terminal the card was used at.
    merchant: str = "merchantId"
    country: str = "country"
    #: Card present or not (``pos``, ``online``, ``CNP``, ...): any short label.
    channel: str = "channel"
    #: Merchant category (e.g. an MCC).
    category: str = "category"
    #: Coordinates of where the card was used, in any planar units (distances are compared
    #: with the user's own usual distance, so the unit does not matter).
    latitude: str = "latitude"
    longitude: str = "longitude"
    #: How the timestamp field's numbers are read (:data:`TimestampUnit`).
    timestamp_unit: TimestampUnit = "auto"
    #: :meth:`core_names`, built once: every message reads it.
    _core: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        core = frozenset({self.user_id, self.amount, self.timestamp, self.transaction_id})
        object.__setattr__(self, "_core", core)

    def core_names(self) -> frozenset[str]:
        """The fields parsed into the transaction itself; the others pass through to alerts."""
        return self._core

    def roles(self) -> dict[str, str]:
        """Role -> field name, for messages and documentation."""
        roles = (f.name for f in fields(self) if f.init and f.name != "timestamp_unit")
        return {name: getattr(self, name) for name in roles}
