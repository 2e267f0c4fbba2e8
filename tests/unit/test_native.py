"""``fraudstream native``'s bookkeeping, on a package of plain files (the compiler runs in
``tests/integration/test_native.py``)."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

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
