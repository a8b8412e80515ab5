"""A 2-D scatter PNG of embeddings: a few identities on their first two principal axes."""

import numpy as np


def write_scatter(path, embeddings, labels, max_identities=10, title=None):
    """2-D scatter of held-out embeddings of a few identities (first two principal axes)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ids = np.unique(labels)[:max_identities]
    mask = np.isin(labels, ids)
    x = embeddings[mask] - embeddings[mask].mean(axis=0)
    # Principal axes via SVD: a linear projection, so distances are not warped like t-SNE.
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    try:
        for k in ids:
            sel = labels[mask] == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, label=str(int(k)))
        ax.set_title(title or f"held-out embeddings, {len(ids)} identities (PCA)", fontsize=10)
        ax.legend(fontsize=6, ncol=2, loc="best")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
