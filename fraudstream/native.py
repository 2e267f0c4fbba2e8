"""The worker's hot modules compiled to C with mypyc, next to their sources.

Built into the container image, opt-in elsewhere (``fraudstream native build``; ``clean``
undoes it): the per-event work of the worker is Python that runs for every transaction
(behaviour features, merchant statistics, rules, pending entries, parsing, the batch handler's
own loop), and the same fully typed code compiled by mypyc costs the batch handler about 40%
less CPU
(``benchmarks/native.py``). Nothing else changes: the compiled modules are built from the
very sources in the package, and Python imports an extension module in preference to the
``.py`` beside it.

That preference is also the hazard: a source edited after the build would be silently
ignored. The build records each source's SHA-256 in :data:`MANIFEST`; :func:`status` lists the
modules whose source no longer matches, and the worker refuses to start on a stale build.

mypyc compiles a dataclass's own methods but not the ``__init__`` that ``@dataclass``
generates, which stays Python and costs 10x a compiled one (frozen: 724 against 64 ns for four
fields). The records made for every event therefore write theirs out (``init=False``), and
``tests/unit/test_native.py`` checks each against its fields.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

#: The modules compiled, by their path inside the package: where the worker spends its
#: per-event time outside Half-Space Trees (the batch pass over River's trees uses numpy,
#: which mypyc cannot speed up). ``worker/state.py`` stays Python: the Faust tables' state
#: subclasses its class, and Python classes cannot subclass compiled ones.
MODULES = (
    "core/behaviour.py",
    "core/merchants.py",
    "core/pending.py",
    "core/rules.py",
    "core/parsing.py",
    "core/detector.py",
    "core/records.py",
    "core/categories.py",
    "core/segments.py",
    "core/masking.py",
    "core/clock.py",
    "core/units.py",
    "core/labels.py",
    "core/expressions.py",
    "worker/handler.py",
    "worker/changelog.py",
    "worker/stats.py",
)
#: Written by :func:`build` beside the package's ``__init__``: what was compiled, from what.
MANIFEST = "native.json"
#: mypyc's shared runtime library is ``{GROUP}__mypyc`` plus the extension suffix, beside the
#: package (a top-level module, as mypyc places it).
GROUP = "fraudstream_native"
#: The type checking mypyc compiles under. River is not followed (its objects are Any to the
#: compiled code, which only calls them): checking River's own sources, as a plain mypyc run
#: does once a compiled module imports the detector, takes mypy over ten minutes.
MYPY_CONFIG = """\
[mypy]
ignore_missing_imports = True
[mypy-river.*]
follow_imports = skip
"""
PACKAGE = Path(__file__).resolve().parent


class NativeBuildError(RuntimeError):
    """mypyc or the C compiler failed (the message carries their output's tail), or a
    compiled module no longer matches its source."""


@dataclass(frozen=True)
class NativeStatus:
    """What :func:`status` found: the compiled modules, and those whose source has changed."""

    compiled: tuple[str, ...]
    stale: tuple[str, ...]

    def describe(self) -> str:
        """One line for people."""
        if not self.compiled:
            return "pure Python: no compiled modules (fraudstream native build compiles them)"
        text = f"compiled with mypyc: {', '.join(self.compiled)}"
        if self.stale:
            text += f"; STALE (source changed since the build): {', '.join(self.stale)}"
        return text


def build(package: Path = PACKAGE, python: str = sys.executable) -> NativeStatus:
    """Compile :data:`MODULES` (about a minute), put them beside their sources, record the
    sources' hashes.

    mypyc runs on a copy of the package alone, in a temporary directory: run where the package
    is installed, mypy would read that folder's other top-level modules as sources (in
    site-packages, ``mypy_extensions`` shadows mypy's own and the build fails). The extension
    modules then go next to their sources and mypyc's shared runtime library (:data:`GROUP`)
    beside the package. Needs mypy (with mypyc) and a C compiler; raises
    :class:`NativeBuildError` with their output when they fail, or when the package's folder
    cannot be written.
    """
    clean(package)
    sources = [str(Path(package.name) / module) for module in MODULES]
    with tempfile.TemporaryDirectory(prefix="fraudstream-native-") as work:
        tree = Path(work) / "tree"
        # clean() left no extension module to copy
        shutil.copytree(package, tree / package.name, ignore=shutil.ignore_patterns("__pycache__"))
        config = Path(work) / "mypy.ini"
        config.write_text(MYPY_CONFIG)
        script = (
            "import sys\n"
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            "sources, work, group = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]\n"
            "setup(name=group, ext_modules=mypycify(sources, target_dir=work + '/c',"
            " group_name=group), script_args=['build_ext', '--inplace', '--build-temp',"
            " work + '/o', '--build-lib', work + '/lib'])\n"
        )
        result = subprocess.run(
            [python, "-c", script, "--config-file", str(config), *sources, work, GROUP],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise NativeBuildError(f"mypyc failed (exit {result.returncode}):\n{tail}")
        built = [(tree / package.name / module, package / module) for module in MODULES]
        built.append((tree / f"{GROUP}__mypyc.py", package.parent / f"{GROUP}__mypyc.py"))
        try:
            for source, target in built:
                for extension in _extensions(source):
                    shutil.copy2(extension, target.parent / extension.name)
        except OSError as exc:
            clean(package)
            raise NativeBuildError(
                f"cannot write the compiled modules beside {package}: {exc}"
            ) from exc
    manifest = {module: _digest(package / module) for module in MODULES}
    (package / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return status(package)


def clean(package: Path = PACKAGE) -> None:
    """Remove every compiled module, the shared library and the manifest: pure Python again.

    Every extension module beside a source goes, not only those of :data:`MODULES`: one
    compiled by an earlier version that compiled more would otherwise keep being imported.
    """
    (package / MANIFEST).unlink(missing_ok=True)
    for module in _compiled(package):
        for extension in _extensions(package / module):
            extension.unlink()
    for extension in _extensions(package.parent / f"{GROUP}__mypyc.py"):
        extension.unlink()


def status(package: Path = PACKAGE) -> NativeStatus:
    """Which sources of the package have a compiled module beside them, and which are stale.

    A compiled module without a manifest, or whose source's hash differs from the one
    recorded at build time, is stale: Python would run the compiled code, not the source. So
    is one the manifest does not name (left by a build of another version).
    """
    manifest = package / MANIFEST
    recorded: dict[str, str] = {}
    if manifest.exists():
        recorded = dict(json.loads(manifest.read_text()))
    compiled = _compiled(package)
    stale = tuple(m for m in compiled if recorded.get(m) != _digest(package / m))
    return NativeStatus(compiled, stale)


def require_current(package: Path = PACKAGE) -> NativeStatus:
    """The status, if no compiled module is stale; else :class:`NativeBuildError` saying so.

    The worker calls it at start: running compiled code that is not what the sources say
    would make every later edit of those modules silently ineffective.
    """
    found = status(package)
    if found.stale:
        raise NativeBuildError(
            f"compiled modules do not match their sources: {', '.join(found.stale)}; "
            "run `fraudstream native build` again, or `fraudstream native clean` for pure Python"
        )
    return found


def _compiled(package: Path) -> tuple[str, ...]:
    """The sources (paths inside the package) that have an extension module beside them,
    :data:`MODULES` first in their order, then any other."""
    found = {
        source.relative_to(package).as_posix()
        for source in package.rglob("*.py")
        if _extensions(source)
    }
    return tuple(m for m in MODULES if m in found) + tuple(sorted(found - set(MODULES)))


def _extensions(source: Path) -> list[Path]:
    stem = source.with_suffix("")
    return [p for suffix in EXTENSION_SUFFIXES if (p := Path(f"{stem}{suffix}")).exists()]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
