"""Render one built case as a PNG: truth maps, one recorded and one truth pattern per index.

Usage: ``python benchmarks/corpus/show.py CASE_DIR OUT.png``. Row 1: truth labels, overlap
ratio, total counts per position, log of the mean pattern; row 2: the recorded pattern at
the middle pure position of each truth index (square root, 1st percentile removed); row 3:
the noise-free truth pattern of each index (square root).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def show(case, out) -> None:
    """Write the figure of a `Case` to ``out``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = case.truth
    k = t.k_true
    ncol = max(k, 4)
    fig, ax = plt.subplots(3, ncol, figsize=(2.2 * ncol, 6.8))
    for a in ax.ravel():
        a.axis("off")
    data = case.data
    ax[0, 0].imshow(t.labels, cmap="tab20", interpolation="nearest")
    ax[0, 0].set_title("truth labels")
    ax[0, 1].imshow(t.ratio, cmap="magma", vmin=0, vmax=1)
    ax[0, 1].set_title("truth ratio")
    ax[0, 2].imshow(np.asarray(data, np.float64).sum(axis=(2, 3)), cmap="gray")
    ax[0, 2].set_title("total per position")
    ax[0, 3].imshow(np.log1p(np.asarray(data, np.float64).mean(axis=(0, 1))), cmap="gray")
    ax[0, 3].set_title("log mean pattern")
    for c in range(k):
        pos = np.argwhere((t.labels == c) & (t.ratio == 0))
        if len(pos) == 0:
            continue
        y, x = pos[len(pos) // 2]
        d = np.asarray(data[y, x], np.float64)
        ax[1, c].imshow(np.sqrt(np.maximum(d - np.percentile(d, 1), 0)), cmap="gray")
        ax[1, c].set_title(f"{c} at ({y},{x})", fontsize=8)
        if t.patterns is not None:
            ax[2, c].imshow(np.sqrt(t.patterns[c]), cmap="gray")
            ax[2, c].set_title(t.names[c][:28], fontsize=7)
    fig.suptitle(f"{case.meta.get('name')} ({case.meta.get('generator')}, seed "
                 f"{case.meta.get('seed')}): k_true {k}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=60)
    plt.close(fig)


if __name__ == "__main__":
    from corpus.case import load_case
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    show(load_case(sys.argv[1]), sys.argv[2])
