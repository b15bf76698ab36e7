"""``kmeans.image.quantize``: exact recovery, alpha, the fold, the reported numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from image_helpers import KNOWN_COLORS, color_set, tiled_image, write_png
from PIL import Image

from kmeans import KMeans, UnknownStrategyError, ValidationError
from kmeans.data import raccoon_path
from kmeans.image import COLOR_SPACES, LossyOutputWarning, fold_colors, load_image, quantize, quantize_shared


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_k_equal_to_the_number_of_colors_gives_exactly_those_colors_back(space: str) -> None:
    image = tiled_image(KNOWN_COLORS)
    result = quantize(image, n_clusters=4, color_space=space)
    assert color_set(result.palette) == color_set(KNOWN_COLORS)
    assert np.array_equal(result.image, image)
    assert result.mse == 0.0 and result.psnr == math.inf


def test_fewer_colors_than_k_gives_one_palette_entry_per_color() -> None:
    result = quantize(tiled_image(KNOWN_COLORS), n_clusters=16)
    assert result.palette.shape == (4, 3)
    assert result.colors_before == result.colors_after == 4


def test_the_image_is_the_palette_looked_up_by_the_labels() -> None:
    result = quantize(raccoon_path(), n_clusters=6)
    assert np.array_equal(result.image, result.palette[result.labels])
    assert result.counts.sum() == 768 * 1024
    assert np.array_equal(result.counts, np.bincount(result.labels.ravel(), minlength=6))


def test_mse_and_psnr_are_the_per_pixel_rgb_error_against_the_original() -> None:
    original = load_image(raccoon_path())
    result = quantize(original, n_clusters=5)
    mse = np.mean((result.image.astype(float) - original) ** 2)
    assert result.mse == pytest.approx(mse, rel=1e-12)
    assert result.psnr == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)


def test_the_reported_inertia_is_the_weighted_cost_of_the_pixels_in_the_clustering_space() -> None:
    image = load_image(raccoon_path())[::4, ::4]
    result = quantize(image, n_clusters=4, prebin_bits=None)
    pixels = image.reshape(-1, 3).astype(float)
    assert result.inertia == pytest.approx(-result.model.score(pixels), rel=1e-9)


def test_the_fold_reconstructs_every_pixel_through_its_inverse_index() -> None:
    image = load_image(raccoon_path())
    fold = fold_colors(image)
    assert np.array_equal(fold.colors[fold.inverse].reshape(image.shape), image)
    assert fold.pixels.sum() == image.shape[0] * image.shape[1]
    assert fold.colors.shape[0] == 134_105  # distinct colors of the paper's image


def test_rgba_is_quantized_with_alpha_as_a_color_dimension() -> None:
    rng = np.random.default_rng(1)
    rgba = np.concatenate(
        [tiled_image(KNOWN_COLORS, 16, 16), rng.integers(0, 256, (16, 16, 1), dtype=np.uint8)], axis=2
    )
    result = quantize(rgba, n_clusters=6)
    assert result.palette.shape == (6, 4)
    assert np.array_equal(result.image, result.palette[result.labels])
    assert len(color_set(result.image, channels=4)) <= 6  # alpha is quantized too, not copied


def test_rgba_with_at_most_k_colors_is_reproduced_exactly() -> None:
    colors = np.array([[200, 30, 40, 255], [10, 120, 250, 128], [250, 250, 250, 1], [0, 0, 0, 0]], dtype=np.uint8)
    rgba = colors[np.random.default_rng(2).integers(0, 4, 60)].reshape(6, 10, 4)
    rgba[0, :4] = colors
    result = quantize(rgba, n_clusters=4, color_space="oklab")
    assert np.array_equal(result.image, rgba)
    assert result.mse == 0.0


def test_fully_transparent_pixels_collapse_to_one_entry_whatever_their_hidden_color() -> None:
    rgba = np.concatenate([tiled_image(KNOWN_COLORS[:2], 10, 10), np.full((10, 10, 1), 255, np.uint8)], axis=2)
    rgba[:5, :, 3] = 0  # half the pixels fully transparent ...
    other = rgba.copy()
    other[:5, :, :3] = np.random.default_rng(3).integers(0, 256, (5, 10, 3), dtype=np.uint8)  # ... hiding other colors
    a, b = quantize(rgba, n_clusters=3), quantize(other, n_clusters=3)
    assert np.array_equal(a.palette, b.palette) and np.array_equal(a.image, b.image)
    assert color_set(a.palette, channels=4) == {(0, 0, 0, 0)} | {(*c, 255) for c in color_set(KNOWN_COLORS[:2])}
    assert (a.image[:5] == 0).all()


def test_the_rgba_error_is_per_channel_in_premultiplied_levels() -> None:
    rgba = np.array([[[200, 100, 0, 255], [100, 50, 0, 51]]], dtype=np.uint8)
    result = quantize(rgba, n_clusters=1)
    # Premultiplied levels (R a, G a, B a, A), a = A / 255, against the one entry's.
    want = np.array([[200.0, 100.0, 0.0, 255.0], [20.0, 10.0, 0.0, 51.0]])
    entry = result.palette[0].astype(float)
    got = np.concatenate([entry[:3] * entry[3] / 255, entry[3:]])
    assert result.mse == pytest.approx(float(((want - got) ** 2).mean()), rel=1e-12)


def test_an_image_with_every_pixel_transparent_gives_one_transparent_entry() -> None:
    result = quantize(np.full((4, 4, 4), 7, dtype=np.uint8) * np.array([1, 1, 1, 0], np.uint8), n_clusters=2)
    assert result.palette.tolist() == [[0, 0, 0, 0]]


def test_rgba_is_written_as_a_palette_png_with_transparency(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rgba = np.concatenate(
        [tiled_image(KNOWN_COLORS, 12, 16), rng.integers(0, 256, (12, 16, 1), dtype=np.uint8)], axis=2
    )
    result = quantize(rgba, n_clusters=5)
    result.save(tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "P" and "transparency" in im.info
    assert np.array_equal(load_image(tmp_path / "out.png"), result.image)


def test_a_pil_image_and_a_grayscale_array_are_accepted() -> None:
    gray = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    from_array = quantize(gray, n_clusters=2)
    from_pil = quantize(Image.fromarray(gray), n_clusters=2)
    assert color_set(from_array.palette) == color_set(from_pil.palette) == {(0, 0, 0), (255, 255, 255)}


def test_the_coarse_histogram_fit_is_within_a_tenth_of_a_db_of_the_exact_fit() -> None:
    image = load_image(raccoon_path())[::3, ::3]  # 16k distinct colors: the histogram path runs
    fast = quantize(image, n_clusters=8)
    exact = quantize(image, n_clusters=8, prebin_bits=None)
    assert fast.colors_before > 4096
    assert fast.psnr >= exact.psnr - 0.1


def test_shared_palette_gives_every_image_the_same_palette() -> None:
    a = tiled_image(KNOWN_COLORS[:2], seed=1)
    b = tiled_image(KNOWN_COLORS[2:], seed=2)
    ra, rb = quantize_shared([a, b], n_clusters=4)
    assert np.array_equal(ra.palette, rb.palette)
    assert color_set(ra.palette) == color_set(KNOWN_COLORS)
    assert np.array_equal(ra.image, a) and np.array_equal(rb.image, b)


def test_the_model_is_a_fitted_kmeans_in_the_clustering_space() -> None:
    result = quantize(tiled_image(KNOWN_COLORS), n_clusters=4, color_space="oklab")
    assert isinstance(result.model, KMeans)
    assert result.model.cluster_centers_.shape == (4, 3)
    assert result.model.cluster_centers_[:, 0].max() <= 1.0 + 1e-9  # Oklab L, not RGB levels


def test_same_seed_gives_the_same_palette() -> None:
    image = load_image(raccoon_path())[::4, ::4]
    assert np.array_equal(quantize(image, 8, seed=3).palette, quantize(image, 8, seed=3).palette)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_k_below_one_or_not_an_integer_is_refused(k: object) -> None:
    with pytest.raises(ValidationError, match="k must be an integer >= 1"):
        quantize(tiled_image(KNOWN_COLORS), n_clusters=k)  # type: ignore[arg-type]


def test_an_unknown_backend_is_refused_before_the_image_is_read(tmp_path: Path) -> None:
    with pytest.raises(UnknownStrategyError, match="unknown backend 'nope'; known backends: numpy"):
        quantize(tmp_path / "missing.png", n_clusters=2, backend="nope")


def test_an_unknown_initializer_is_refused() -> None:
    with pytest.raises(UnknownStrategyError, match="unknown initializer 'nope'"):
        quantize(tiled_image(KNOWN_COLORS), n_clusters=2, init="nope")


def test_an_indexed_save_writes_a_palette_png_with_the_palette(tmp_path: Path) -> None:
    result = quantize(raccoon_path(), n_clusters=12)
    out = tmp_path / "out.png"
    result.save(out, indexed=True)
    with Image.open(out) as im:
        assert im.mode == "P"
        palette = np.array(im.getpalette()[: 3 * 12], dtype=np.uint8).reshape(12, 3)
        assert color_set(palette) == color_set(result.palette)  # stored by luma, see palette_order
        luma = palette.astype(int) @ [299, 587, 114]
        assert (np.diff(luma) >= 0).all()
        assert np.array_equal(np.asarray(im.convert("RGB")), result.image)


def test_a_png_is_a_palette_png_by_default_and_truecolor_when_asked(tmp_path: Path) -> None:
    result = quantize(tiled_image(KNOWN_COLORS, 24, 32), n_clusters=3)
    result.save(tmp_path / "auto.png")
    result.save(tmp_path / "true.png", indexed=False)
    with Image.open(tmp_path / "auto.png") as auto, Image.open(tmp_path / "true.png") as true:
        assert (auto.mode, true.mode) == ("P", "RGB")
        assert np.array_equal(np.asarray(auto.convert("RGB")), np.asarray(true))
    assert result.written["mode"] == "RGB"
    assert result.written["bytes"] == (tmp_path / "true.png").stat().st_size


def test_a_gray_image_stays_gray_in_a_palette_and_in_truecolor(tmp_path: Path) -> None:
    gray = np.random.default_rng(0).integers(0, 256, (12, 16), dtype=np.uint8)
    result = quantize(gray, n_clusters=5)
    assert (result.palette[:, 0] == result.palette[:, 1]).all() and (result.palette[:, 1] == result.palette[:, 2]).all()
    result.save(tmp_path / "gray.png", indexed=False)
    with Image.open(tmp_path / "gray.png") as im:
        assert im.mode == "L"
        assert np.array_equal(np.asarray(im), result.image[:, :, 0])


def test_a_jpeg_save_warns_and_records_the_error_of_the_decoded_file(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    result = quantize(image, n_clusters=4)
    with pytest.warns(LossyOutputWarning, match=r"out\.jpg: JPEG is lossy and adds colors back"):
        result.save(tmp_path / "out.jpg")
    back = load_image(tmp_path / "out.jpg").astype(np.float64)
    mse = float(np.mean((back - image) ** 2))
    assert result.written["mse"] == pytest.approx(mse, rel=1e-12)
    assert result.written["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)
    assert result.written["colors"] == len(color_set(back.astype(np.uint8))) > 4


def test_saving_refuses_to_replace_a_file_unless_asked(tmp_path: Path) -> None:
    out = write_png(tmp_path / "out.png", tiled_image(KNOWN_COLORS))
    before = out.read_bytes()
    result = quantize(tiled_image(KNOWN_COLORS, seed=5), n_clusters=2)
    with pytest.raises(ValueError, match="already exists"):
        result.save(out)
    assert out.read_bytes() == before
    result.save(out, overwrite=True)
    assert np.array_equal(load_image(out), result.image)


def test_refining_on_the_exact_colors_never_raises_the_cost_of_the_histogram_fit() -> None:
    image = load_image(raccoon_path())[::3, ::3]
    coarse = quantize(image, n_clusters=8, refine_iter=0)
    refined = quantize(image, n_clusters=8, refine_iter=3)
    assert refined.inertia <= coarse.inertia * (1 + 1e-12)
    assert refined.n_iter > coarse.n_iter
    assert np.array_equal(refined.image, refined.palette[refined.labels])


def test_a_gif_output_holds_exactly_the_palette_colors(tmp_path: Path) -> None:
    result = quantize(raccoon_path(), n_clusters=32)
    result.save(tmp_path / "out.gif")
    assert np.array_equal(load_image(tmp_path / "out.gif"), result.image)


def test_a_gif_cannot_hold_more_than_256_colors(tmp_path: Path) -> None:
    result = quantize(raccoon_path(), n_clusters=300)
    with pytest.raises(ValueError, match="at most 256 colors"):
        result.save(tmp_path / "out.gif")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif", ".bmp"])
def test_lossless_outputs_read_back_as_the_quantized_image(tmp_path: Path, ext: str) -> None:
    result = quantize(tiled_image(KNOWN_COLORS, 12, 16), n_clusters=3)
    result.save(tmp_path / f"out{ext}")
    assert np.array_equal(load_image(tmp_path / f"out{ext}"), result.image)


@pytest.mark.parametrize(("option", "value"), [("prebin_bits", 0), ("prebin_bits", 8), ("refine_iter", -1)])
def test_out_of_range_fast_path_options_are_refused(option: str, value: int) -> None:
    with pytest.raises(ValidationError, match=option):
        quantize(tiled_image(KNOWN_COLORS), n_clusters=2, **{option: value})
