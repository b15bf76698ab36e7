"""Small images without Numba (kmeans.image.small): the same bits as the compiled path, and no Numba import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from image_helpers import write_png

from kmeans import KMeans
from kmeans._random import derive_seed as compiled_derive_seed
from kmeans._random import exponential_keys
from kmeans._random import uniform as compiled_uniform
from kmeans.image import dither, quantize, small
from kmeans.image.colorspace import to_features
from kmeans.image.quantize import fold_colors

SEEDS = st.integers(0, 2**63 - 1)


@given(seed=SEEDS, path=st.lists(st.integers(0, 2**40), max_size=3))
@settings(max_examples=30)
def test_seeds_and_uniforms_are_the_compiled_ones(seed: int, path: list[int]) -> None:
    assert small.derive_seed(seed, *path) == compiled_derive_seed(seed, *path)
    rows = np.arange(0, 5000, 7, dtype=np.int64) + path[0] if path else np.arange(100, dtype=np.int64)
    assert np.array_equal(small.uniform(seed, rows), compiled_uniform(seed, rows))


def test_the_smallest_keys_are_the_kernels_with_the_c_librarys_log() -> None:
    # 20,000 draws: the rows of the m smallest keys and their order are those of the compiled keys.
    rng = np.random.default_rng(0)
    for trial in range(20):
        w = rng.integers(0, 40, 1000).astype(np.float64) * rng.random()
        seed = int(rng.integers(0, 2**63))
        keys = exponential_keys(seed, np.arange(1000, dtype=np.int64), w)
        want = np.lexsort((np.arange(1000), keys))[: 1 + trial % 7]
        want = want[np.isfinite(keys[want])]
        assert np.array_equal(small.smallest_keys(seed, w, 1 + trial % 7), want)


def _colors(data: st.DataObject, channels: int) -> np.ndarray:
    levels = data.draw(st.sampled_from([2, 3, 6, 256]))
    n = data.draw(st.integers(1, 600))
    seed = data.draw(st.integers(0, 2**32 - 1))
    px = np.random.default_rng(seed).integers(0, levels, (n, 1, channels)) * (255 // (levels - 1))
    return fold_colors(px.astype(np.uint8)).colors


@given(data=st.data())
@settings(max_examples=40)
def test_the_numpy_fit_is_the_compiled_fit_bit_for_bit(data: st.DataObject) -> None:
    colors = _colors(data, data.draw(st.sampled_from([3, 4])))
    x = to_features(colors, data.draw(st.sampled_from(["rgb", "oklab", "lab"])))
    w = np.random.default_rng(data.draw(st.integers(0, 99))).integers(1, 30, x.shape[0]).astype(np.float64)
    k = data.draw(st.integers(1, min(24, x.shape[0])))
    params = {"seed": data.draw(SEEDS), "tol": data.draw(st.sampled_from([0.0, 1e-3, 0.1])), "max_iter": 20}
    found = small.fit_small(x, w, k, **params)
    history: list = []
    model = KMeans(k, init="k-means++", callbacks=[history.append], **params).fit(x, sample_weight=w)
    assert found is not None
    assert np.array_equal(found.centers, model.cluster_centers_)
    assert found.n_iter == model.n_iter_
    assert [(r.iteration, r.inertia, r.center_shift) for r in found.history] == [
        (r.iteration, r.inertia, r.center_shift) for r in history
    ]
    assert np.array_equal(small.nearest(x, found.centers), model.labels_)


def test_fewer_distinct_rows_than_k_are_left_to_the_compiled_path() -> None:
    # The estimator answers those exactly (the points as centers), without k-means++.
    x = np.array([[0.0, 0, 0], [1, 0, 0], [1, 0, 0]])
    assert small.fit_small(x, np.ones(3), 3, seed=0, tol=0.0, max_iter=10) is None
    assert small.fit_small(x[:2], np.ones(2), 3, seed=0, tol=0.0, max_iter=10) is None
    assert small.fit_small(x, np.ones(3), 2, seed=0, tol=0.0, max_iter=10) is not None


@pytest.mark.parametrize(
    ("space", "channels", "dither_name"),
    [("rgb", 3, "none"), ("oklab", 3, "floyd-steinberg"), ("rgb", 4, "floyd-steinberg"), ("lab", 3, "none")],
)
def test_quantize_gives_the_same_result_on_either_path(
    space: str, channels: int, dither_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = np.random.default_rng(7).integers(0, 256, (24, 20, channels), dtype=np.uint8)
    if channels == 4:
        image[::3, ::2, 3] = 0
    records: list = []
    ours = quantize(image, 6, color_space=space, dither=dither_name, callbacks=[records.append])
    assert not hasattr(ours._model, "cluster_centers_")  # the NumPy path ran: no model fitted yet
    monkeypatch.setattr(small, "SMALL_COLORS", 0)
    monkeypatch.setattr(dither, "INTERPRETED_PIXELS", 0)
    theirs = quantize(image, 6, color_space=space, dither=dither_name)
    for name in ("palette", "labels", "image", "counts"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
    assert (ours.mse, ours.n_iter, ours.inertia) == (theirs.mse, theirs.n_iter, theirs.inertia)
    assert len(records) == ours.n_iter
    assert np.array_equal(ours.model.cluster_centers_, theirs.model.cluster_centers_)  # fitted on first read


@given(data=st.data())
@settings(max_examples=15)
def test_the_interpreted_dither_is_the_compiled_one(data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    h, w, channels = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12)), data.draw(st.sampled_from([3, 4]))
    image = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    k = data.draw(st.integers(1, 12))
    palette_rgb = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    space = data.draw(st.sampled_from(["rgb", "oklab"]))
    palette = to_features(palette_rgb, space)
    fold = {"inverse": np.arange(h * w), "space_colors": to_features(image.reshape(h * w, channels), space)}
    kw = {} if space == "rgb" and channels == 3 else fold
    start = rng.integers(0, k, h * w)
    strength = data.draw(st.sampled_from([0.0, 0.5, 1.0]))
    got = [dither.floyd_steinberg(image, start, palette, palette_rgb, strength=strength, **kw)]
    old = dither.INTERPRETED_PIXELS
    try:
        dither.INTERPRETED_PIXELS = 0
        got.append(dither.floyd_steinberg(image, start, palette, palette_rgb, strength=strength, **kw))
    finally:
        dither.INTERPRETED_PIXELS = old
    assert np.array_equal(got[0][0], got[1][0])
    assert got[0][1] == got[1][1]


def test_the_command_line_quantizes_a_small_png_without_importing_numba(tmp_path: Path) -> None:
    from PIL import Image

    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    src = write_png(tmp_path / "in.png", image)
    script = (
        "import sys\nfrom kmeans.cli import main\n"
        f"src, out = {str(src)!r}, {str(tmp_path)!r}\n"
        "codes = [main(['quantize', src, '-o', out + name, '-q', '-k', '4', *extra])"
        " for name, extra in (('/a.png', []), ('/b.png', ['--dither', 'floyd-steinberg']))]\n"
        "print(codes, sorted(m for m in ('numba', 'llvmlite', 'scipy', 'pyspark') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[0, 0] []"
    written = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"))
    assert np.array_equal(written, quantize(image, 4, dither="floyd-steinberg").image)
