"""``fraudstream native``'s bookkeeping, on a package of plain files (the compiler runs in
``tests/integration/test_native.py``)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from datetime import datetime, timezone
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from fraudstream import native


def package_with(tmp_path: Path, *compiled: str) -> Path:
    package = tmp_path / "fraudstream"
    for module in (*native.MODULES, "worker/state.py", "core/detector.py"):
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_text("x = 1\n")
    for module in compiled:
        (package / module).with_suffix(EXTENSION_SUFFIXES[0]).write_bytes(b"not a real one")
    return package


def test_a_module_compiled_by_another_version_is_reported_stale_and_cleaned(
    tmp_path: Path,
) -> None:
    package = package_with(tmp_path, "core/behaviour.py", "worker/state.py")
    found = native.status(package)
    assert found.compiled == ("core/behaviour.py", "worker/state.py")
    assert found.stale == ("core/behaviour.py", "worker/state.py")  # no manifest names them
    native.clean(package)
    assert native.status(package).compiled == ()
    assert not list(package.rglob("*" + EXTENSION_SUFFIXES[0]))


def test_a_pure_package_has_nothing_compiled(tmp_path: Path) -> None:
    assert native.status(package_with(tmp_path)) == native.NativeStatus((), ())


def hand_written_constructors() -> list[type]:
    """The compiled modules' dataclasses whose ``__init__`` is written out, not generated."""
    found = []
    for module in native.MODULES:
        loaded = importlib.import_module("fraudstream." + module[:-3].replace("/", "."))
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and value.__module__ == loaded.__name__
                and dataclasses.is_dataclass(value)
                and not value.__dataclass_params__.init
            ):
                found.append(value)
    return found


def test_the_records_made_per_event_have_their_constructor_written_out() -> None:
    names = {cls.__name__ for cls in hand_written_constructors()}
    assert {"Decision", "RuleOutcome", "Transaction", "Source", "MerchantStats"} <= names
    assert {"PendingEntry", "CategoryAmounts"} <= names


@pytest.mark.parametrize("cls", hand_written_constructors(), ids=lambda cls: cls.__name__)
def test_a_written_out_constructor_takes_and_keeps_every_field_as_the_generated_one_would(
    cls: type,
) -> None:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in parameters] == [f.name for f in fields]
    for field, parameter in zip(fields, parameters, strict=True):
        if field.default_factory is not dataclasses.MISSING:
            assert parameter.default is None  # None stands for a fresh default
        elif field.default is dataclasses.MISSING:
            assert parameter.default is inspect.Parameter.empty
        else:
            assert parameter.default == field.default
    given = {f.name: object() for f in fields}  # each argument kept in its own field
    if cls.__name__ == "Transaction":
        given["timestamp"] = datetime(2024, 1, 1, tzinfo=timezone.utc)
    made = cls(**given)
    assert all(getattr(made, name) is value for name, value in given.items())
    empty = inspect.Parameter.empty
    fresh = cls(**{p.name: given[p.name] for p in parameters if p.default is empty})
    for field in fields:
        if field.default_factory is not dataclasses.MISSING:
            assert getattr(fresh, field.name) == field.default_factory()
