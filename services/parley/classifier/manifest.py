"""The model manifest: the SHA-256 of every artifact the classifier loads, checked before any is opened.

`models/SHA256SUMS` is in `sha256sum` format (`sha256sum -c SHA256SUMS` checks it by hand). Training and
`parley classify-bench --write` rewrite it; a file that differs from it, is missing, or is not listed refuses
to load, so a swapped or corrupted model is never unpickled, however permissive its skops trusted types.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MANIFEST = "SHA256SUMS"
# Everything `Triager` reads from the models folder.
ARTIFACTS = ("intent.skops", "topic.skops", "knowledge_base.yaml", "metrics.json", "static_vectors.npz")


class ArtifactMismatch(RuntimeError):
    """A model artifact does not match the manifest (or the manifest is missing)."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write(models_dir: Path) -> Path:
    """(Re)write the manifest from the artifacts as they are now."""
    models_dir = Path(models_dir)
    lines = [f"{sha256(models_dir / name)}  {name}\n" for name in ARTIFACTS]
    path = models_dir / MANIFEST
    path.write_text("".join(lines))
    return path


def listed(path: Path) -> dict[str, str]:
    """The manifest's {artifact name: SHA-256}."""
    digests: dict[str, str] = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest:
            digests[name.lstrip("*")] = digest.lower()
    return digests


def verify(models_dir: Path) -> None:
    """Raise ArtifactMismatch unless every artifact matches its SHA-256 in the manifest."""
    models_dir = Path(models_dir)
    path = models_dir / MANIFEST
    if not path.exists():
        raise ArtifactMismatch(
            f"{path} is missing: model artifacts are loaded only when listed with their SHA-256 "
            "(`parley train` writes the manifest)"
        )
    digests = listed(path)
    for name in ARTIFACTS:
        expected = digests.get(name)
        if expected is None:
            raise ArtifactMismatch(f"{name} is not listed in {path}; refusing to load the models")
        if not (models_dir / name).exists():
            raise ArtifactMismatch(f"{models_dir / name} is missing; refusing to load the models")
        actual = sha256(models_dir / name)
        if actual != expected:
            raise ArtifactMismatch(
                f"{models_dir / name} has SHA-256 {actual}, but {path} lists {expected}: "
                "refusing to load a model artifact that differs from the one trained"
            )
