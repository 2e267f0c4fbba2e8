"""scripts/audit: fails on vulnerabilities, says so when nothing could be audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "audit"


def run_audit(tmp_path: Path, dependencies: list[dict[str, object]], **env: str) -> tuple[int, str]:
    """Run the script with a pip-audit stand-in that writes ``dependencies`` as its report."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "pip").write_text("#!/bin/sh\nexit 0\n")
    report = json.dumps({"dependencies": dependencies})
    (bin_dir / "pip-audit").write_text(
        '#!/bin/sh\nwhile [ "$1" != "--output" ]; do shift; done\n'
        f"cat > \"$2\" <<'JSON'\n{report}\nJSON\n"
    )
    for name in ("pip", "pip-audit"):
        (bin_dir / name).chmod(0o755)
    result = subprocess.run(
        ["bash", str(SCRIPT), str(bin_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    return result.returncode, result.stdout


def test_a_known_vulnerability_fails_the_audit(tmp_path: Path) -> None:
    deps = [
        {"name": "ok", "version": "1", "vulns": []},
        {"name": "bad", "version": "2", "vulns": [{"id": "PYSEC-1"}]},
    ]
    code, out = run_audit(tmp_path, deps)
    assert code == 1
    assert "VULNERABLE bad 2: PYSEC-1" in out


def test_a_clean_audit_passes_and_lists_what_it_could_not_look_up(tmp_path: Path) -> None:
    deps = [
        {"name": "ok", "version": "1", "vulns": []},
        {"name": "local", "version": "0", "skip_reason": "not on PyPI"},
    ]
    code, out = run_audit(tmp_path, deps)
    assert code == 0
    assert "not audited: local" in out
    assert "audited 1 of 2 packages" in out


@pytest.mark.parametrize(("required", "expected"), [("0", 0), ("1", 1)])
def test_nothing_auditable_is_reported_and_fails_only_when_required(
    tmp_path: Path, required: str, expected: int
) -> None:
    deps = [{"name": "x", "version": "1", "skip_reason": "Dependency not found on PyPI"}]
    code, out = run_audit(tmp_path, deps, FRAUDSTREAM_AUDIT_REQUIRED=required)
    assert code == expected
    assert "AUDIT NOT RUN" in out
