"""`tfface.eval.clustering` on synthetic embeddings of known identity: Chinese whispers (dlib's
algorithm, against a dict-counting loop reference), DBSCAN, `min_size`, and the scores
(purity, recall, pairwise F1) on hand-counted examples. No TensorFlow."""

import sys

import numpy as np
import pytest

from tfface.eval import clustering
from tfface.eval.clustering import UNCLUSTERED
from tfface.eval.clustering import chinese_whispers
from tfface.eval.clustering import cluster_embeddings
from tfface.eval.clustering import clustering_scores
from tfface.eval.clustering import neighbours


def people(sizes, dim=64, spread=0.5, seed=0):
    """Embeddings [sum(sizes), dim] and identities: a random unit centre per person plus
    Gaussian noise of norm ~`spread` (same-person cosine ~1/(1+spread²) = 0.8 at 0.5;
    different people ~0 ± 0.13 in 64-D)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    identities = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[identities] + spread * rng.normal(size=(len(identities), dim)) / np.sqrt(dim)
    order = rng.permutation(len(identities))  # people interleaved, not in blocks
    return x[order].astype(np.float32), identities[order]


def reference_chinese_whispers(embeddings, threshold, iterations, seed):
    """dlib's loop, written out: edges i–j (j >= i) where the cosine reaches the threshold,
    weight 1; each step a random node takes the label with the largest summed weight among
    its neighbours, scanning labels in increasing order with a strict `>` (std::map)."""
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    n = len(x)
    near = {i: [] for i in range(n)}
    for i in range(n):
        for j in range(i, n):
            if float(np.dot(x[i], x[j])) >= threshold:
                near[i].append(j)
                if j != i:
                    near[j].append(i)
    labels = list(range(n))
    for node in np.random.default_rng(seed).integers(0, n, size=iterations * n):
        counts = {}
        for other in near[node]:
            counts[labels[other]] = counts.get(labels[other], 0.0) + 1.0
        best, best_score = labels[node], -np.inf
        for label in sorted(counts):
            if counts[label] > best_score:
                best, best_score = label, counts[label]
        labels[node] = best
    # Renumbered by first appearance, as chinese_whispers returns them.
    first = {}
    return np.array([first.setdefault(label, len(first)) for label in labels])


@pytest.mark.parametrize("spread, threshold", [(0.5, 0.5), (1.2, 0.3), (1.6, 0.25)])
def test_chinese_whispers_matches_the_loop_reference(spread, threshold):
    x, _ = people([6, 4, 3, 1, 2], spread=spread, seed=3)
    for seed in (0, 1):
        expected = reference_chinese_whispers(x, threshold, iterations=20, seed=seed)
        np.testing.assert_array_equal(
            chinese_whispers(x, threshold, iterations=20, seed=seed), expected
        )


def test_separated_people_are_found_exactly():
    x, identities = people([12, 9, 7, 5, 3, 1, 1])
    labels = cluster_embeddings(x, threshold=0.5, min_size=2, seed=0)
    scores = clustering_scores(identities, labels)
    assert scores["purity"] == 1.0 and scores["recall"] == 1.0
    assert scores["pairwise_f1"] == 1.0
    assert scores["clusters"] == 5 and scores["unclustered"] == 2  # the two lone faces
    # Numbered by size: person 0 is the largest cluster.
    assert np.bincount(labels[labels >= 0]).tolist() == [12, 9, 7, 5, 3]


def test_noisy_people_keep_high_purity_and_recall():
    # Same-person cosine 0.50 ± 0.06 against -0.01 ± 0.08 apart (128-D, as dlib's): at 0.35,
    # 15 same-person pairs miss their edge and 1 pair of strangers gets one; the graph's
    # transitivity still recovers each person.
    x, identities = people([20] * 10, dim=128, spread=1.0, seed=2)
    scores = clustering_scores(identities, cluster_embeddings(x, threshold=0.35, seed=0))
    assert scores["purity"] >= 0.95 and scores["recall"] >= 0.9, scores
    assert scores["pairwise_f1"] >= 0.85, scores


def test_a_seed_makes_the_clustering_repeatable():
    x, _ = people([15] * 6, spread=1.4, seed=2)
    a = cluster_embeddings(x, threshold=0.3, seed=7)
    np.testing.assert_array_equal(a, cluster_embeddings(x, threshold=0.3, seed=7))


def test_min_size_moves_small_groups_to_unclustered():
    x, identities = people([5, 3, 2, 1])
    labels = cluster_embeddings(x, threshold=0.5, min_size=3)
    assert np.bincount(labels[labels >= 0]).tolist() == [5, 3]
    assert np.sum(labels == UNCLUSTERED) == 3
    kept = cluster_embeddings(x, threshold=0.5, min_size=1)
    assert np.bincount(kept).tolist() == [5, 3, 2, 1]


def test_a_tied_pair_joins_under_the_smaller_label():
    # Two faces, one edge: each sees labels {0: 1, 1: 1}; the tie goes to label 0.
    x = np.array([[1.0, 0.0], [0.8, 0.6], [-1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(chinese_whispers(x, 0.7, iterations=5, seed=0), [0, 0, 1])


def test_neighbours_in_chunks_equal_the_whole_matrix(monkeypatch):
    x, _ = people([4, 4, 3], spread=1.0)
    monkeypatch.setattr(clustering, "_CHUNK", 3)
    similar = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        x / np.linalg.norm(x, axis=1, keepdims=True)
    ).T >= 0.4
    np.fill_diagonal(similar, True)
    got = neighbours(x, 0.4)
    assert [row.tolist() for row in got] == [np.flatnonzero(r).tolist() for r in similar]


def test_scores_on_a_hand_counted_example():
    """Faces of people [A, A, A, B, B] in clusters [0, 0, 1, 1, -1]: clusters {A, A},
    {A, B} and the lone {B}. Purity (2 + 1 + 1) / 5 = 0.8; recall: A's best cluster holds
    2, B's 1: 3 / 5 = 0.6. Pairs: 1 pair together of 2 same-cluster pairs (precision 0.5)
    and of 4 same-person pairs (recall 0.25); F1 = 2·0.5·0.25 / 0.75 = 1/3."""
    scores = clustering_scores(["A", "A", "A", "B", "B"], [0, 0, 1, 1, -1])
    assert scores["purity"] == pytest.approx(0.8) and scores["recall"] == pytest.approx(0.6)
    assert scores["pairwise_precision"] == pytest.approx(0.5)
    assert scores["pairwise_recall"] == pytest.approx(0.25)
    assert scores["pairwise_f1"] == pytest.approx(1 / 3)
    assert (scores["clusters"], scores["unclustered"], scores["identities"]) == (2, 1, 2)


def test_everything_in_one_cluster_is_pure_only_for_one_person():
    scores = clustering_scores([0, 0, 1, 1], [0, 0, 0, 0])
    assert scores["purity"] == 0.5 and scores["recall"] == 1.0
    assert scores["pairwise_precision"] == pytest.approx(2 / 6)


def test_dbscan_finds_the_same_people():
    pytest.importorskip("sklearn")
    x, identities = people([12, 9, 7, 1])
    labels = cluster_embeddings(x, threshold=0.5, method="dbscan", min_size=2)
    scores = clustering_scores(identities, labels)
    assert scores["purity"] == 1.0 and scores["recall"] == 1.0
    assert np.bincount(labels[labels >= 0]).tolist() == [12, 9, 7]


def test_dbscan_without_scikit_learn_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    with pytest.raises(ImportError):
        cluster_embeddings(np.eye(3), 0.5, method="dbscan")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 1.5}, "threshold"),
        ({"method": "kmeans"}, "method"),
        ({"min_size": 0}, "min_size"),
        ({"iterations": 0}, "iterations"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    args = {"threshold": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        cluster_embeddings(np.eye(3, dtype=np.float32), **args)


def test_no_faces_no_labels():
    assert cluster_embeddings(np.zeros((0, 8)), 0.5).shape == (0,)
