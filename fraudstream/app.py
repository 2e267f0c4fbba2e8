"""``faust -A fraudstream.app worker``: the name users run; the app lives in the worker package."""

from fraudstream.worker.app import app

__all__ = ["app"]
