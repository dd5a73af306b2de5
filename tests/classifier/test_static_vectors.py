"""The bot's static sentence vectors: BERT WordPiece tokenization, the shipped artifact's manifest check, and
the verification that refuses encoder files whose digests differ from the upstream model's."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from parley.classifier import manifest
from parley.classifier.static_vectors import ARTIFACT, StaticVectors
from parley.classifier.training import minilm
from parley.classifier.wordpiece import WordPiece, basic_words
from parley.config import REPO_ROOT

MODELS = REPO_ROOT / "models"


@pytest.fixture(scope="module")
def shipped() -> StaticVectors:
    return StaticVectors.load(MODELS)


def test_basic_words_lower_case_strip_accents_and_split_punctuation() -> None:
    # "$" is ASCII punctuation to BERT, "£" a currency symbol that stays inside its word.
    assert basic_words("Héllo,  WORLD!! can't\tpay $40 £40") == [
        "hello", ",", "world", "!", "!", "can", "'", "t", "pay", "$", "40", "£40",
    ]  # fmt: skip


def test_wordpiece_takes_the_longest_pieces_and_marks_continuations() -> None:
    vocab = ["[PAD]", "[UNK]", "un", "##aff", "##able", "una", "##ffa", "##ble", "card", "!"]
    wp = WordPiece(vocab)
    assert [vocab[i] for i in wp.encode("Unaffable card!")] == ["una", "##ffa", "##ble", "card", "!"]
    assert wp.encode("xyz") == [wp.unk]  # no piece starts the word
    assert wp.encode("card" * 30) == [wp.unk]  # longer than 100 characters


def test_the_shipped_vocabulary_splits_as_bert_does(shipped: StaticVectors) -> None:
    vocab = shipped.wordpiece.vocab
    assert [vocab[i] for i in shipped.wordpiece.encode("unaffable")] == ["una", "##ffa", "##ble"]


def test_sentences_embed_to_unit_vectors_close_in_meaning(shipped: StaticVectors) -> None:
    lost, stolen, hours, empty = shipped.embed(
        ["I lost my debit card", "someone stole my bank card", "what time do you open on sunday", "  "]
    )
    assert np.linalg.norm(lost) == pytest.approx(1.0, abs=1e-5) and not empty.any()
    assert lost @ stolen > lost @ hours + 0.1


def test_static_vectors_that_differ_from_the_manifest_are_refused(tmp_path: Path) -> None:
    shutil.copy(MODELS / ARTIFACT, tmp_path / ARTIFACT)
    shutil.copy(MODELS / manifest.MANIFEST, tmp_path / manifest.MANIFEST)
    StaticVectors.load(tmp_path)
    with (tmp_path / ARTIFACT).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(manifest.ArtifactMismatch, match="refusing to load"):
        StaticVectors.load(tmp_path)
    (tmp_path / manifest.MANIFEST).write_text("")
    with pytest.raises(manifest.ArtifactMismatch, match="not listed"):
        StaticVectors.load(tmp_path)


def _encoder_folder(folder: Path) -> Path:
    folder.mkdir()
    for name in minilm.DIGESTS:
        (folder / name).write_bytes(b"not the upstream file")
    return folder


def test_encoder_files_with_another_digest_are_refused(tmp_path: Path) -> None:
    folder = _encoder_folder(tmp_path / "model")
    with pytest.raises(minilm.EncoderUnavailable, match="refusing it"):
        minilm.MiniLM(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(minilm.EncoderUnavailable, match="missing"):
        minilm.verify(folder)


def test_safetensors_are_read_without_any_other_library(tmp_path: Path) -> None:
    tensor = np.arange(6, dtype="<f4").reshape(2, 3)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + tensor.tobytes())
    assert np.array_equal(minilm.read_safetensors(path)["w"], tensor)
