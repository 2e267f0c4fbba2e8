"""``fraudstream native``: the core's hot modules compiled with mypyc decide exactly as the sources.

Needs a C compiler (a real component, like the broker: missing, the test fails). Works on a copy
of the package in a temporary directory, so the checkout stays pure Python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fraudstream import native
from tests.support.package_copy import copy_package

#: Decides a labeled stream (labels included) offline and prints where the compiled modules
#: were loaded from, then a digest of every decision.
DECIDE = """
import hashlib, importlib, itertools, json
from fraudstream import native
from fraudstream.cli import evaluate as ev
from fraudstream.settings import Settings
options = ev.EvaluateOptions(generator="personas", users=150, days=20, offline=True, seed=5)
settings = Settings()
labels = ev.DelayedLabels(3 * 86_400_000, 1.0, seed=5)
records = itertools.islice(ev.labeled_stream(options, settings), 6000)
decisions, _ = ev.run_offline(records, settings, labels)
modules = ["fraudstream." + m[:-3].replace("/", ".") for m in native.MODULES]
print(json.dumps([importlib.import_module(m).__file__.rsplit(".", 1)[-1] for m in modules]))
alerts = sum(1 for d in decisions.values() if d["reasons"])
digest = hashlib.sha256(json.dumps(decisions, sort_keys=True).encode()).hexdigest()
print(len(decisions), alerts, digest)
"""


def copy_of_the_package(tmp_path: Path) -> Path:
    return copy_package(tmp_path) / "fraudstream"


def decide(root: Path) -> tuple[list[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", DECIDE],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    where, digest = result.stdout.strip().splitlines()[-2:]
    return list(json.loads(where)), digest


def test_the_compiled_core_decides_exactly_as_the_sources_and_is_removed_cleanly(
    tmp_path: Path,
) -> None:
    assert shutil.which("cc") or shutil.which("gcc"), "native builds need a C compiler"
    package = copy_of_the_package(tmp_path)
    # installed, the package lies among other top-level modules (site-packages), which the
    # build must not read: a mypy_extensions.py there broke mypyc's own imports
    (tmp_path / "mypy_extensions.py").write_text('"""Not the real one."""\n')
    pure_files, pure = decide(tmp_path)
    assert set(pure_files) == {"py"}

    built = native.build(package)
    assert built.compiled == native.MODULES and built.stale == ()
    native_files, compiled = decide(tmp_path)
    assert set(native_files) == {"so"}  # the extension modules, not the sources, ran
    assert compiled == pure
    assert int(pure.split()[1]) > 0  # the stream raised alerts: the comparison means something

    rules = package / "core" / "rules.py"
    rules.write_text(rules.read_text() + "\n# edited after the build\n")
    assert native.status(package).stale == ("core/rules.py",)
    with pytest.raises(native.NativeBuildError, match=r"core/rules\.py"):
        native.require_current(package)

    native.clean(package)
    assert native.status(package).compiled == ()
    leftovers = [p for p in tmp_path.rglob("*") if p.suffix in (".so", ".pyd")]
    assert leftovers == [] and not (package / native.MANIFEST).exists()
