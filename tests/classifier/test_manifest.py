"""Model artifacts load only when they match the SHA-256 manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parley.classifier import manifest
from parley.classifier.model import Triager
from parley.config import REPO_ROOT

MODELS = REPO_ROOT / "models"


@pytest.fixture
def models(tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    copy.mkdir()
    for name in (*manifest.ARTIFACTS, manifest.MANIFEST):
        shutil.copy(MODELS / name, copy / name)
    return copy


def test_the_shipped_models_match_their_manifest() -> None:
    manifest.verify(MODELS)


@pytest.mark.parametrize("name", manifest.ARTIFACTS)
def test_a_tampered_artifact_is_refused_before_loading(models: Path, name: str) -> None:
    with (models / name).open("ab") as f:
        f.write(b"\n")
    with pytest.raises(manifest.ArtifactMismatch, match=f"{name} has SHA-256 .* refusing to load"):
        Triager(models)


def test_a_swapped_model_is_refused(models: Path) -> None:
    # A model that is valid on its own (the topic model) in place of another (the intent model).
    shutil.copy(models / "topic.skops", models / "intent.skops")
    with pytest.raises(manifest.ArtifactMismatch, match="intent.skops"):
        Triager(models)


def test_models_without_a_manifest_are_refused(models: Path) -> None:
    (models / manifest.MANIFEST).unlink()
    with pytest.raises(manifest.ArtifactMismatch, match="SHA256SUMS is missing"):
        Triager(models)


def test_an_unlisted_artifact_is_refused(models: Path) -> None:
    listed = (models / manifest.MANIFEST).read_text().splitlines()
    (models / manifest.MANIFEST).write_text("".join(f"{line}\n" for line in listed if "topic" not in line))
    with pytest.raises(manifest.ArtifactMismatch, match="topic.skops is not listed"):
        Triager(models)


def test_rewriting_the_manifest_accepts_the_new_artifacts(models: Path) -> None:
    (models / "metrics.json").write_text('{"model_version": "retrained"}')
    manifest.write(models)
    assert Triager(models).version == "retrained"
