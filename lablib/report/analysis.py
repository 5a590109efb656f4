"""Analysis of the features: the t-SNE map and how often an image's nearest neighbours share its class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from lablib.data.fashion_mnist import CLASS_NAMES
from lablib.rng import tsne_seed

NEIGHBOURS = 10


@dataclass(frozen=True)
class FeatureMap:
    """The t-SNE map of the features and, per class, the share of each point's nearest neighbours
    (in the features themselves) that belong to its class."""

    points: np.ndarray
    labels: np.ndarray
    purity: dict[str, float]
    perplexity: float


def tsne_map(features: np.ndarray, labels: np.ndarray, seed: int) -> FeatureMap:
    """t-SNE (scikit-learn, PCA initialisation, seeded from the TSNE stream of ``seed``) of ``features``,
    and each class's share of same-class neighbours among the :data:`NEIGHBOURS` nearest points in the
    features themselves."""
    n = len(features)
    perplexity = float(min(30.0, (n - 1) / 3))
    k = min(NEIGHBOURS, n - 1)
    # One thread: the Barnes-Hut gradient then sums in one order on every machine, and OpenMP threads on
    # a busy machine do not spin waiting for each other.
    with threadpool_limits(limits=1):
        tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=tsne_seed(seed))
        points = tsne.fit_transform(features)
        _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    same = (labels[neighbours[:, 1:]] == labels[:, None]).mean(axis=1)
    purity = {CLASS_NAMES[c]: float(same[labels == c].mean()) for c in np.unique(labels)}
    return FeatureMap(points, labels, purity, perplexity)
