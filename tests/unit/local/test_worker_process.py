"""The worker child process: where it starts decides which package it runs."""

from __future__ import annotations

from pathlib import Path

from fraudstream.local.worker_process import WorkerProcess


def test_a_worker_started_in_a_directory_runs_the_package_found_there(tmp_path: Path) -> None:
    """How a benchmark runs a compiled copy of fraudstream beside the sources."""
    package = tmp_path / "copy" / "fraudstream"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    marker = tmp_path / "ran"
    (package / "__main__.py").write_text(
        f"import sys\nopen({str(marker)!r}, 'w').write(__file__ + ' ' + ' '.join(sys.argv[1:]))\n"
    )
    worker = WorkerProcess({}, tmp_path / "worker.log", log_level="warn", cwd=package.parent)
    worker.start()
    assert worker.process is not None
    assert worker.process.wait(timeout=30) == 0
    assert marker.read_text() == f"{package / '__main__.py'} worker -l warn"
