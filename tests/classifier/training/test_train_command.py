"""`parley train` on an install without the `train` extra says what to install, before doing any work."""

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parley.cli import app


def test_train_without_the_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An entry of None makes `import matplotlib` raise ImportError, as on an install without the extra.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    models = tmp_path / "models"
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--models", str(models)])
    assert result.exit_code == 2
    assert "pip install 'parley[train]'" in result.output
    assert not models.exists()


def test_train_names_a_missing_data_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "--data" in result.output and "absent" in result.output


def test_train_names_a_models_folder_without_the_label_mapping(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--models", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "label_mapping.yaml" in result.output and "--models" in result.output


def test_train_names_a_models_folder_without_the_static_vectors(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "label_mapping.yaml").write_text("{}\n")
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--models", str(models)])
    assert result.exit_code == 2
    assert "static_vectors.npz" in result.output and "distill-vectors" in result.output
