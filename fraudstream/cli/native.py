"""``fraudstream native build|clean|status``: the detection core compiled with mypyc, or not."""

from __future__ import annotations

import sys

from fraudstream import native
from fraudstream.cli.exits import EXIT_REFUSED


def run_native(action: str) -> int:
    """Build, remove or describe the compiled modules; 0 on success, 2 when the build fails.

    ``status`` also exits 2 when a compiled module is stale (its source changed since).
    """
    if action == "build":
        print(f"compiling {len(native.MODULES)} modules with mypyc (a minute) ...", flush=True)
        try:
            found = native.build()
        except native.NativeBuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    elif action == "clean":
        native.clean()
        found = native.status()
    else:
        found = native.status()
    print(found.describe())
    return EXIT_REFUSED if found.stale else 0
