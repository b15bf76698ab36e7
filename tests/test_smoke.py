import numpy as np

from kmeans import KMeans


def test_two_obvious_clusters_are_found() -> None:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    model = KMeans(n_clusters=2, seed=0).fit(X)
    assert sorted(model.cluster_centers_.tolist()) == [[0.0, 0.5], [10.0, 10.5]]
    assert model.inertia_ == 1.0
    assert model.labels_[0] == model.labels_[1] != model.labels_[2] == model.labels_[3]
