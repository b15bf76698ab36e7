"""Mini-batch k-means (``algorithm="minibatch"``) and ``partial_fit`` on the numpy backend."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmeans import KMeans, load_model
from kmeans._random import derive_seed
from kmeans.backends.numpy import NumPyBackend
from kmeans.dataset import BlockDataset
from kmeans.distance.l2 import L2
from kmeans.errors import ValidationError
from kmeans.minibatch import MiniBatch, MiniBatchState, RowSampler, batches, minibatch_step
from tests import oracle


def blobs(n: int, k: int, d: int, seed: int, dtype: Any = np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d))
    return (centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(dtype)


X_BLOBS = blobs(6000, 8, 5, 0)


def fixed_steps(batch_size: int, **kw: Any) -> MiniBatch:
    """A mini-batch that runs all its steps (no early stopping)."""
    return MiniBatch(batch_size=batch_size, max_no_improvement=None, **kw)


# -- one step, by hand ---------------------------------------------------------------------


def test_step_moves_each_center_to_the_running_mean_of_its_rows() -> None:
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    state = MiniBatchState(np.array([2.0, 1.0]), since_reassign=0)
    points = np.array([[1.0, 0.0], [2.0, 0.0], [9.0, 3.0]])
    weights = np.array([1.0, 3.0, 1.0])
    new, out = minibatch_step(state, centers, points, weights, L2, reassignment_ratio=0.0)
    # center 0: (2 * 0 + 1 * 1 + 3 * 2) / (2 + 4) = 7/6 in x; center 1: (1 * 10 + 9) / 2, (0 + 3) / 2
    np.testing.assert_allclose(new, [[7 / 6, 0.0], [9.5, 1.5]])
    np.testing.assert_array_equal(state.counts, [6.0, 2.0])
    assert out.inertia == 1.0 + 3 * 4.0 + (1.0 + 9.0)  # costs before the update, weighted
    assert out.weight == 5.0 and state.n_steps == 1
    assert out.shift == pytest.approx(np.hypot(0.5, 1.5))


def test_a_center_that_gets_no_row_stays_and_keeps_its_count() -> None:
    centers = np.array([[0.0], [100.0]])
    state = MiniBatchState(np.array([1.0, 5.0]))
    new, _ = minibatch_step(state, centers, np.array([[1.0], [3.0]]), np.ones(2), L2, 0.0)
    np.testing.assert_array_equal(new, [[4.0 / 3.0], [100.0]])
    np.testing.assert_array_equal(state.counts, [3.0, 5.0])


def test_centers_of_count_zero_move_onto_batch_rows_and_take_the_smallest_other_count() -> None:
    centers = np.array([[0.0], [50.0], [1000.0]])
    state = MiniBatchState(np.array([4.0, 0.0, 0.0]), seed=7)
    points = np.array([[1.0], [2.0], [3.0], [4.0]])
    new, out = minibatch_step(state, centers, points, np.ones(4), L2, 0.01)
    assert out.n_reassigned == 2
    assert set(new[1:, 0]) <= {1.0, 2.0, 3.0, 4.0} and new[1, 0] != new[2, 0]  # distinct rows, no replacement
    np.testing.assert_array_equal(state.counts, [8.0, 8.0, 8.0])
    assert new[0, 0] == pytest.approx((4 * 0.0 + 10.0) / 8.0)


def test_reassignment_never_picks_a_row_of_weight_zero() -> None:
    centers = np.array([[0.0], [50.0]])
    for seed in range(20):
        state = MiniBatchState(np.array([4.0, 0.0]), seed=seed)
        points = np.array([[1.0], [7.0], [3.0]])
        new, _ = minibatch_step(state, centers, points, np.array([1.0, 0.0, 1.0]), L2, 0.01)
        assert new[1, 0] in (1.0, 3.0)


# -- drawing rows ------------------------------------------------------------------------------


@pytest.mark.parametrize("block_rows", [1, 7, 100, 5000])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_block_layout_draws_the_same_rows(block_rows: int, weighted: bool) -> None:
    X = np.arange(3000, dtype=np.float64)[:, None]
    w = np.random.default_rng(1).uniform(0, 3, 3000) if weighted else None
    ref = RowSampler(BlockDataset.from_arrays(X, w)).rows(11, 5, 400, X.dtype)
    got = RowSampler(BlockDataset.from_arrays(X, w, block_rows=block_rows)).rows(11, 5, 400, X.dtype)
    np.testing.assert_array_equal(got, ref)


def test_rows_are_drawn_in_proportion_to_their_weight_and_never_at_weight_zero() -> None:
    X = np.arange(4, dtype=np.float64)[:, None]
    w = np.array([1.0, 0.0, 3.0, 6.0])
    drawn = RowSampler(BlockDataset.from_arrays(X, w, block_rows=1)).rows(3, 0, 100_000, X.dtype)[:, 0]
    freq = np.bincount(drawn.astype(int), minlength=4) / drawn.shape[0]
    assert freq[1] == 0
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.01)


def test_unit_weights_draw_rows_uniformly() -> None:
    X = np.arange(10, dtype=np.float64)[:, None]
    drawn = RowSampler(BlockDataset.from_arrays(X)).rows(3, 0, 50_000, X.dtype)[:, 0]
    np.testing.assert_allclose(np.bincount(drawn.astype(int)) / 50_000, 0.1, atol=0.01)


# -- the fit -----------------------------------------------------------------------------------


def test_fit_is_deterministic_from_the_seed_whatever_the_blocks() -> None:
    params: dict[str, Any] = {"algorithm": fixed_steps(128), "max_iter": 2, "tol": 0.0, "seed": 4}
    ref = KMeans(8, **params).fit(X_BLOBS)
    for rows in (999, 4096):
        got = KMeans(8, **params, backend=NumPyBackend(block_rows=rows, n_threads=2)).fit(X_BLOBS)
        np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
        np.testing.assert_array_equal(got.labels_, ref.labels_)
    other = KMeans(8, **{**params, "seed": 5}).fit(X_BLOBS)
    assert not np.array_equal(other.cluster_centers_, ref.cluster_centers_)


def test_final_inertia_labels_and_sizes_are_exact_for_the_final_centers() -> None:
    w = np.random.default_rng(2).uniform(0, 2, X_BLOBS.shape[0])
    model = KMeans(8, algorithm="minibatch", batch_size=200, seed=0).fit(X_BLOBS, sample_weight=w)
    labels, _ = oracle.assign(X_BLOBS, model.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(oracle.inertia(X_BLOBS, model.cluster_centers_, w), rel=1e-12)
    np.testing.assert_allclose(model.cluster_sizes_, np.bincount(labels, weights=w, minlength=8), rtol=1e-12)
    assert model.labels_.dtype == np.int32


def test_steps_epochs_and_history_follow_scikit_learns_counting() -> None:
    model = KMeans(8, algorithm=fixed_steps(500), max_iter=3, tol=0.0, seed=0).fit(X_BLOBS)
    assert model.n_steps_ == 3 * 6000 // 500 == len(model.history_)
    assert model.n_iter_ == 3 and not model.converged_
    assert [h.iteration for h in model.history_] == list(range(1, 37))


def test_early_stopping_on_the_smoothed_batch_cost() -> None:
    model = KMeans(8, algorithm=MiniBatch(batch_size=100, max_no_improvement=3), max_iter=50, tol=0.0, seed=0)
    model.fit(X_BLOBS)
    assert 3 < model.n_steps_ < 50 * 60


def test_tol_stops_when_no_center_moved_more_than_tol() -> None:
    model = KMeans(8, algorithm=fixed_steps(100), max_iter=50, tol=1e9, seed=0).fit(X_BLOBS)
    assert model.n_steps_ == 2 and model.converged_  # the first step never counts (initial centers' cost)


def test_max_iter_zero_returns_the_initial_centers() -> None:
    init = X_BLOBS[:8]
    model = KMeans(8, init=init, algorithm="minibatch", max_iter=0).fit(X_BLOBS)
    np.testing.assert_array_equal(model.cluster_centers_, init)
    assert model.n_steps_ == 0


def test_several_restarts_keep_the_best_seeding() -> None:
    params: dict[str, Any] = {"init": "random", "algorithm": fixed_steps(200), "max_iter": 1, "tol": 0.0, "seed": 3}
    a = KMeans(8, n_init=3, **params).fit(X_BLOBS)
    b = KMeans(8, n_init=3, **params).fit(X_BLOBS)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.n_steps_ == 30


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inertia_within_two_percent_of_lloyd_and_of_scikit_learn(dtype: Any) -> None:
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    X = blobs(20_000, 16, 8, 3, dtype)
    batch, epochs = 512, 2
    ours = KMeans(16, algorithm=fixed_steps(batch), max_iter=epochs, tol=0.0, seed=0).fit(X)
    lloyd = KMeans(16, seed=0).fit(X)
    with threadpool_limits(limits=1):  # its OpenMP threads spin-wait on a busy machine (CI)
        theirs = MiniBatchKMeans(16, batch_size=batch, max_iter=epochs, max_no_improvement=None, random_state=0)
        theirs.fit(X)
    assert ours.n_steps_ == theirs.n_steps_
    assert ours.inertia_ <= 1.02 * lloyd.inertia_
    assert ours.inertia_ <= 1.02 * theirs.inertia_


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_count_like_repeated_rows(seed: int) -> None:
    rng = np.random.default_rng(6)
    X = blobs(3000, 6, 3, 6)
    w = rng.integers(1, 4, X.shape[0]).astype(np.float64)
    params: dict[str, Any] = {"algorithm": fixed_steps(256), "max_iter": 3, "tol": 0.0, "seed": seed}
    weighted = KMeans(6, **params).fit(X, sample_weight=w)
    repeated = KMeans(6, **params).fit(np.repeat(X, w.astype(int), axis=0))
    # other draws, the same distribution of rows: the same quality (a seeding may miss a blob for both)
    assert weighted.score(X, sample_weight=w) == pytest.approx(repeated.score(X, sample_weight=w), rel=0.01)


def test_compress_true_fits_the_distinct_rows_and_labels_every_input_row() -> None:
    X = np.repeat(blobs(800, 5, 2, 8).round(1), 3, axis=0)
    model = KMeans(5, algorithm="minibatch", batch_size=100, compress=True, seed=0).fit(X)
    labels, _ = oracle.assign(X, model.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(oracle.inertia(X, model.cluster_centers_), rel=1e-12)


def test_integer_data_is_not_compressed_by_default() -> None:
    X = np.random.default_rng(0).integers(0, 4, size=(500, 2)).astype(np.uint8)
    model = KMeans(4, algorithm="minibatch", batch_size=50, seed=0).fit(X)
    assert model.labels_.shape == (500,)
    assert model.cluster_sizes_.sum() == 500


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(4, 60),
    k=st.integers(1, 4),
    batch=st.integers(1, 30),
    seed=st.integers(0, 2**32),
    weighted=st.booleans(),
)
def test_centers_stay_finite_and_the_result_is_exact_for_them(
    n: int, k: int, batch: int, seed: int, weighted: bool
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.integers(-5, 5, size=(n, 2)).astype(np.float64)
    w = rng.choice([0.0, 0.5, 2.0], size=n) if weighted else None
    if w is not None:
        w[0] = 1.0
    positive = X if w is None else X[w > 0]
    k = min(k, np.unique(positive, axis=0).shape[0])
    model = KMeans(k, algorithm="minibatch", batch_size=batch, max_iter=3, seed=seed).fit(X, sample_weight=w)
    assert np.isfinite(model.cluster_centers_).all()
    labels, _ = oracle.assign(X, model.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(oracle.inertia(X, model.cluster_centers_, w), rel=1e-9, abs=1e-9)


# -- partial_fit ---------------------------------------------------------------------------


def fit_batches(X: np.ndarray, seed: int, batch: int, steps: int) -> list[np.ndarray]:
    """The rows each step of ``KMeans(seed=seed, n_init=1)`` reads."""
    return list(batches(RowSampler(BlockDataset.from_arrays(X)), derive_seed(seed, 0), batch, steps, X.dtype))


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_partial_fit_over_the_batches_equals_the_fit(init: str) -> None:
    X = blobs(3000, 6, 4, 1, np.float32)
    algorithm = fixed_steps(100, init_size=100)  # the initializer then reads the first batch
    fitted = KMeans(6, init=init, n_init=1, algorithm=algorithm, max_iter=1, tol=0.0, seed=3).fit(X)
    streamed = KMeans(6, init=init, algorithm=algorithm, seed=3)
    for chunk in fit_batches(X, 3, 100, 30):
        streamed.partial_fit(chunk)
    np.testing.assert_array_equal(streamed.cluster_centers_, fitted.cluster_centers_)
    np.testing.assert_array_equal(streamed.minibatch_state_.counts, fitted.minibatch_state_.counts)
    assert streamed.n_steps_ == fitted.n_steps_ == 30


def test_partial_fit_reports_the_chunk_exactly() -> None:
    model = KMeans(4, algorithm="minibatch", seed=0)
    chunk = X_BLOBS[:300]
    model.partial_fit(chunk).partial_fit(X_BLOBS[300:700])
    labels, _ = oracle.assign(X_BLOBS[300:700], model.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(oracle.inertia(X_BLOBS[300:700], model.cluster_centers_), rel=1e-12)
    assert model.n_steps_ == 2 == len(model.history_) and model.n_features_in_ == 5


def test_partial_fit_with_weights_uses_them_in_the_step() -> None:
    chunk = np.array([[0.0], [1.0], [10.0], [12.0]])
    model = KMeans(2, init=np.array([[0.0], [10.0]]), algorithm="minibatch", seed=0)
    model.partial_fit(chunk, sample_weight=np.array([1.0, 3.0, 1.0, 1.0]))
    np.testing.assert_allclose(model.cluster_centers_, [[0.75], [11.0]])


@pytest.mark.parametrize("how", ["pickle", "save"])
def test_partial_fit_resumes_after_pickle_or_save(how: str, tmp_path: Path) -> None:
    chunks = np.array_split(X_BLOBS, 12)
    whole = KMeans(8, algorithm="minibatch", seed=2)
    for c in chunks:
        whole.partial_fit(c)
    half = KMeans(8, algorithm="minibatch", seed=2)
    for c in chunks[:6]:
        half.partial_fit(c)
    if how == "pickle":
        resumed = pickle.loads(pickle.dumps(half))
    else:
        half.save(tmp_path / "m.json")
        resumed = load_model(tmp_path / "m.json")
    for c in chunks[6:]:
        resumed.partial_fit(c)
    np.testing.assert_array_equal(resumed.cluster_centers_, whole.cluster_centers_)
    assert resumed.n_steps_ == 12


def test_partial_fit_continues_a_minibatch_fit() -> None:
    params: dict[str, Any] = {"algorithm": fixed_steps(100, init_size=100), "tol": 0.0, "seed": 9, "n_init": 1}
    chunks = fit_batches(X_BLOBS, 9, 100, 120)
    fitted = KMeans(8, max_iter=1, **params).fit(X_BLOBS)
    for c in chunks[60:]:
        fitted.partial_fit(c)
    longer = KMeans(8, max_iter=2, **params).fit(X_BLOBS)
    np.testing.assert_array_equal(fitted.cluster_centers_, longer.cluster_centers_)


def test_a_lloyd_fit_is_not_resumed_by_partial_fit() -> None:
    model = KMeans(3, seed=0).fit(X_BLOBS)
    assert not hasattr(model, "minibatch_state_")
    model.partial_fit(X_BLOBS[:100])
    assert model.n_steps_ == 1


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"algorithm": "minibatch", "distance": "l1"}, "weighted means"),
        ({"batch_size": 100}, "applies to algorithm='minibatch'"),
        ({"algorithm": "minibatch", "batch_size": 0}, "batch_size must be >= 1"),
        ({"algorithm": "elkan"}, "algorithm must be"),
        ({"algorithm": MiniBatch(reassignment_ratio=1.5)}, "reassignment_ratio"),
        ({"algorithm": MiniBatch(init_size=0)}, "init_size"),
        ({"algorithm": MiniBatch(max_no_improvement=-1)}, "max_no_improvement"),
    ],
)
def test_bad_parameters_are_refused_before_any_pass(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KMeans(3, **params).fit(X_BLOBS)


def test_partial_fit_refuses_a_first_chunk_with_fewer_distinct_rows_than_clusters() -> None:
    with pytest.raises(ValidationError, match="distinct rows"):
        KMeans(3, algorithm="minibatch").partial_fit(np.zeros((10, 2)))


def test_partial_fit_refuses_a_chunk_of_another_width() -> None:
    model = KMeans(3, algorithm="minibatch", seed=0).partial_fit(X_BLOBS[:100])
    with pytest.raises(ValidationError, match="features"):
        model.partial_fit(X_BLOBS[:100, :3])


@pytest.mark.parametrize("kind", ["npy", "parquet"])
def test_a_file_backed_dataset_draws_the_same_batches_as_the_array(kind: str, tmp_path: Path) -> None:
    import kmeans.datasets

    X = blobs(5000, 4, 3, 12, np.float32)
    if kind == "npy":
        np.save(tmp_path / "x.npy", X)
        dataset = kmeans.datasets.npy(tmp_path / "x.npy")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({f"c{j}": X[:, j] for j in range(3)}), tmp_path / "x.parquet", row_group_size=700)
        dataset = kmeans.datasets.parquet(str(tmp_path / "x.parquet"), columns=["c0", "c1", "c2"])
    params: dict[str, Any] = {"algorithm": fixed_steps(128, gather_rows=1000), "max_iter": 1, "tol": 0.0, "seed": 2}
    ref = KMeans(4, init="k-means++", **params).fit(X)
    got = KMeans(4, init="k-means++", **params).fit(dataset)
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(np.asarray(got.labels_), ref.labels_)
    assert got.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)


@pytest.mark.parametrize(("scale", "weight"), [(1e200, 1.0), (1e-300, 1.0), (1.0, 1e306)])
def test_partial_fit_refuses_a_chunk_at_a_scale_fit_would_rescale(scale: float, weight: float) -> None:
    # Regression: partial_fit skipped fit's power-of-two rescaling and overflowed silently.
    X = np.random.default_rng(0).normal(size=(50, 2)) * scale
    model = KMeans(n_clusters=3, algorithm="minibatch", seed=0)
    with pytest.raises(ValidationError, match="power of two"):
        model.partial_fit(X, sample_weight=np.full(50, weight))
    assert not hasattr(model, "cluster_centers_")  # refused before any work
    model.partial_fit(X / scale)  # the safe range is fitted as before
    assert np.isfinite(model.cluster_centers_).all()
