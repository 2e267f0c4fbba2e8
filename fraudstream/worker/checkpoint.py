"""Model checkpoints on local disk, written atomically so a crash never leaves half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class ModelCheckpoint:
    """One file holding the detector's latest model state."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, blob: bytes) -> None:
        """Write ``blob`` to a temporary sibling, fsync it, then rename it over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(blob)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> bytes | None:
        """The last saved state, or None when there is none yet."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
