"""The simulators sized in users and days, built one way for the producer and ``evaluate``.

The persona, Sparkov-like, BankSim-like, TabFormer-shaped and PaySim-like streams take the same
three numbers (card holders, days, seed) and an optional start (PaySim's origins do not come
back: its ``users`` sets the volume, 3 transactions a day each); the handbook's simulator is
sized in customers and terminals, and the scenario generator in transactions, so they stay apart.

>>> from datetime import datetime, timezone
>>> start = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> first = next(iter(sized_simulator("banksim", users=20, days=3, seed=1, start_time=start)))
>>> first.timestamp.date().isoformat()
'2024-01-01'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TypeVar

from producer.banksim import BanksimParameters, BanksimSimulator
from producer.paysim import PaysimParameters, PaysimSimulator
from producer.personas import PersonaParameters, PersonaSimulator
from producer.records import LabeledTransaction
from producer.sparkov import SparkovParameters, SparkovSimulator
from producer.tabformer import TabformerParameters, TabformerSimulator

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Params = TypeVar("_Params", bound="DataclassInstance")
SizedGenerator = Literal["personas", "sparkov", "banksim", "tabformer", "paysim"]
#: The generators :func:`sized_simulator` builds.
SIZED_GENERATORS: tuple[SizedGenerator, ...] = (
    "personas",
    "sparkov",
    "banksim",
    "tabformer",
    "paysim",
)


def sized_simulator(
    generator: str, users: int, days: int, seed: int, start_time: datetime | None = None
) -> Iterable[LabeledTransaction]:
    """The ``generator``'s stream of ``users`` card holders over ``days``; its own start unless
    ``start_time`` is given."""
    if generator == "personas":
        return PersonaSimulator(_started(PersonaParameters(users, days, seed), start_time))
    if generator == "sparkov":
        return SparkovSimulator(_started(SparkovParameters(users, days, seed), start_time))
    if generator == "banksim":
        return BanksimSimulator(_started(BanksimParameters(users, days, seed), start_time))
    if generator == "tabformer":
        return TabformerSimulator(_started(TabformerParameters(users, days, seed), start_time))
    if generator == "paysim":
        return PaysimSimulator(_started(PaysimParameters(users, days, seed), start_time))
    raise ValueError(f"not a generator sized in users and days: {generator!r}")


def _started(params: _Params, start_time: datetime | None) -> _Params:
    """``params`` with ``start_time`` as day 0, or as they are without one."""
    return params if start_time is None else replace(params, start_time=start_time)
