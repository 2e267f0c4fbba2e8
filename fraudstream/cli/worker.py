"""``fraudstream worker``: Faust's own worker command, configured by the settings."""

from __future__ import annotations

import importlib.util
import sys


def run_worker(loglevel: str | None = None) -> None:
    """Hand over to Faust's worker command, on uvloop when configured and installed."""
    from fraudstream.settings import get_settings

    if get_settings().worker.event_loop == "uvloop" and _has_uvloop():
        # What ``faust -L uvloop`` does; it must happen before the worker creates its loop.
        import mode.loop

        mode.loop.use("uvloop")
    from fraudstream.worker.app import app, settings

    level = loglevel or settings.worker.log_level
    sys.argv = ["fraudstream", "worker", "-l", level, "--web-port", str(settings.worker.web_port)]
    app.main()


def _has_uvloop() -> bool:
    """uvloop is optional (no Windows wheels): fall back to asyncio's loop without it."""
    return importlib.util.find_spec("uvloop") is not None
