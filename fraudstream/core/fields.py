"""Which input field plays which role: the input mapping, so any stream's names can be used.

Only the user, the amount and the timestamp are required; every other role is optional and
a stream without it simply leaves the features built on it neutral. The defaults are the
names fraudstream has always read (``userId``, ``amount``, ...); a stream that says
``customer_id``, ``TX_AMOUNT`` and ``terminal_id`` is read by setting
``FRAUDSTREAM_FIELD_USER_ID``, ``FRAUDSTREAM_FIELD_AMOUNT`` and ``FRAUDSTREAM_FIELD_MERCHANT``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """The input field name of each role.

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

    def core_names(self) -> frozenset[str]:
        """The fields parsed into the transaction itself; the others pass through to alerts."""
        return frozenset({self.user_id, self.amount, self.timestamp, self.transaction_id})

    def roles(self) -> dict[str, str]:
        """Role -> field name, for messages and documentation."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
