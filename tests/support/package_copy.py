"""A copy of fraudstream's sources (and the producer's) without compiled modules.

The native build's test and benchmark compile one copy and compare it with another, leaving
the checkout itself pure Python.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fraudstream import native

ROOT = Path(__file__).resolve().parents[2]


def copy_package(target: Path) -> Path:
    """``fraudstream`` and ``producer`` under ``target``, without ``.so``, ``.pyd`` or the
    native build's manifest; returns ``target``, the root to run them from."""
    for name in ("fraudstream", "producer"):
        shutil.copytree(
            ROOT / name,
            target / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", native.MANIFEST),
        )
    return target
