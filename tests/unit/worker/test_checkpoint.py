"""Model checkpoint files: atomic replace, nothing before the first save."""

from __future__ import annotations

from pathlib import Path

from fraudstream.worker.checkpoint import ModelCheckpoint


def test_load_before_any_save_is_none(tmp_path: Path) -> None:
    assert ModelCheckpoint(tmp_path / "model.ckpt").load() is None


def test_save_replaces_the_previous_state_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(tmp_path / "sub" / "model.ckpt")
    checkpoint.save(b"first")
    checkpoint.save(b"second")
    assert checkpoint.load() == b"second"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["model.ckpt"]
