"""Confusion-matrix pictures, drawn with matplotlib: the one dependency of training that serving does not
have (the `train` extra: `pip install 'parley[train]'`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

INSTALL_HINT = (
    "parley train needs the train extra: pip install 'parley[train]' (it draws its plots with matplotlib)"
)


class MissingExtraError(RuntimeError):
    """Raised when training starts without the packages of the `train` extra."""


def require_extra() -> None:
    """Fail before any work when the `train` extra is not installed, naming what to install."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(INSTALL_HINT) from e


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    m = np.asarray(matrix)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                color="white" if m[i, j] > m.max() / 2 else "black",
            )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
