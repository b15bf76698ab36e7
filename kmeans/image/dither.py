"""Error-diffusion dithering against a fitted palette, in the clustering's color space.

Floyd-Steinberg (1976) in serpentine order: each pixel's color in the working space plus
the error carried to it is clipped to the palette's bounding box (no palette color lies
outside it, so error beyond it can only smear), mapped to its nearest palette entry, and
``strength`` times the remaining error is passed on: 7/16 to the next pixel in the row,
3/16, 5/16 and 1/16 to the three below (mirrored on right-to-left rows). An RGBA image
is dithered in its 4-D working space (premultiplied color and alpha); fully transparent
pixels keep their undithered label and neither take nor pass error.

Edge-aware (``"edge-aware"``, after libimagequant's dither map) passes on
``strength * f * a**2`` of each pixel's error instead, dithering only where banding would
show: ``f = max(0, 1 - e / EDGE_LEVELS)`` is the pixel's flatness, ``e`` the largest
second difference ``|left + right - 2 centre|`` or ``|above + below - 2 centre|`` over
its 8-bit channels, and ``a`` is the share of its (up to 24) neighbours in the 5x5 block
around it whose undithered entry is its own. On edges and in texture (large ``e``), and
where the undithered map already changes from pixel to pixel (small ``a``), it maps to
the nearest entry; in smooth areas that the undithered map bands it is Floyd-Steinberg.
An error carried to a pixel that is under :data:`QUIET_LEVELS` 8-bit levels is dropped
(as libimagequant does): where the undithered entry already matches well, small errors
do not pile up into isolated flipped pixels.

The nearest entry is exact (ties to the lowest index) without scanning the whole
palette: the search starts at the undithered pixel's entry ``c`` and visits the other
entries ``j`` in increasing ``||p_j - p_c||``, stopping once that exceeds
``||v - p_c|| + ||v - p_best||`` (then ``||v - p_j|| > ||v - p_best||`` by the triangle
inequality). Dithered colors stay near their undithered ones, so few entries are visited.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from kmeans import ValidationError

#: Names accepted by ``dither=``.
DITHERS: Final = ("none", "floyd-steinberg", "edge-aware")

#: The default share of the error passed on. Full strength (1) measured worse on every
#: metric on the raccoon, china.jpg and flower.jpg: at k=16, 0.5 gives 28.03 dB / SSIM
#: 0.829 / mean CIEDE2000 5.60 on the raccoon where 1 gives 26.27 / 0.757 / 6.34.
DEFAULT_STRENGTH: Final = 0.5

#: Edge-aware: a second difference of this many 8-bit levels (a tenth of the range) or more
#: counts as an edge, and its pixel passes no error on.
EDGE_LEVELS: Final = 25.5

#: Edge-aware: an error carried to a pixel smaller than this many 8-bit levels (libimagequant's
#: threshold) is dropped, so near-matches are not flipped by errors accumulated from elsewhere.
QUIET_LEVELS: Final = math.sqrt(2.0)

#: Up to this many pixels the kernel runs in the interpreter (as Python, the same source):
#: quicker than loading Numba (~0.8 s) for a small image, and the same labels.
INTERPRETED_PIXELS: Final = 1 << 12


def check_dither(dither: Any, strength: Any) -> tuple[str, float]:
    """Validate ``dither`` (a name in :data:`DITHERS`) and ``strength`` (a number in ``[0, 1]``)."""
    if dither not in DITHERS:
        raise ValidationError(f"unknown dither {dither!r}; choose one of {', '.join(DITHERS)}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)):
        raise ValidationError(f"the dither strength must be a number from 0 to 1, got {strength!r}")
    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise ValidationError(f"the dither strength must be from 0 to 1, got {strength!r}")
    return str(dither), s


def palette_neighbours(palette: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """For each entry, the other entries by increasing distance (ties by index) and those distances."""
    diff = palette[:, None, :] - palette[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")[:, 1:]  # column 0 is the entry itself (distance 0)
    return order.astype(np.intp), np.take_along_axis(dist, order, axis=1)


def literally(value: int) -> int:
    """``numba.literally`` in the compiled kernel (:mod:`kmeans.image._dither_jit`); the identity here."""
    return value


def _floyd_steinberg(
    rgb: Any,
    start: Any,
    inverse: Any,
    space_colors: Any,
    height: int,
    width: int,
    palette: Any,
    palette_rgb: Any,
    order: Any,
    gaps: Any,
    strength: float,
    edge: float,
    quiet: float,
    labels: Any,
    cur: Any,
    nxt: Any,
    v: Any,
    lo: Any,
    hi: Any,
    dims: int,
    aware: int,
) -> float:
    # Compiled by Numba (kmeans.image._dither_jit) or run as Python on memoryviews of the
    # same arrays (small images): hence float() and math.sqrt, and the scratch arrays
    # (two error rows of width + 2, the clipped color, the palette's box) passed in.
    # Per-pixel inputs are read in order; only a non-RGB space (or RGBA) gathers its
    # coordinates through the fold (one random read per pixel instead of one per array).
    literally(dims)  # compiled once per dims, a constant there: the loops over it unroll (1.7x faster)
    literally(aware)  # and once per mode: plain Floyd-Steinberg compiles without the edge-aware code
    k = palette.shape[0]
    channels = rgb.shape[1]
    for j in range(dims):
        lo[j] = palette[0, j]
        hi[j] = palette[0, j]
        for c in range(1, k):
            lo[j] = min(lo[j], palette[c, j])
            hi[j] = max(hi[j], palette[c, j])
    in_rgb = inverse.shape[0] == 0
    sq = 0.0
    for y in range(height):
        forward = y % 2 == 0
        for step in range(width):
            x = step if forward else width - 1 - step
            p = y * width + x
            cand = start[p]
            if channels == 4 and rgb[p, 3] == 0:
                labels[p] = cand  # fully transparent: no error taken or passed on
                continue
            keep = 1.0
            if aware:  # edge-aware: an error carried in below QUIET_LEVELS is dropped, not accumulated
                carried = 0.0
                for j in range(dims):
                    carried += cur[x + 1, j] * cur[x + 1, j]
                if carried < quiet:
                    keep = 0.0
            if in_rgb:
                for j in range(dims):
                    v[j] = min(max(float(rgb[p, j]) + keep * cur[x + 1, j], lo[j]), hi[j])
            else:
                c = inverse[p]
                for j in range(dims):
                    v[j] = min(max(space_colors[c, j] + keep * cur[x + 1, j], lo[j]), hi[j])
            share = strength
            if aware:  # edge-aware: strength x flatness x (same-entry share of the 5x5 block)^2
                row = y * width
                above = row - width if y > 0 else row
                below = row + width if y < height - 1 else row
                left = x - 1 if x > 0 else x
                right = x + 1 if x < width - 1 else x
                curve = 0.0
                for j in range(channels):
                    twice = 2.0 * float(rgb[p, j])
                    across = abs(float(rgb[row + left, j]) + float(rgb[row + right, j]) - twice)
                    down = abs(float(rgb[above + x, j]) + float(rgb[below + x, j]) - twice)
                    curve = max(curve, across, down)
                flat = 1.0 - curve / edge
                if flat <= 0.0:
                    share = 0.0
                else:
                    same = 0
                    if 2 <= y < height - 2 and 2 <= x < width - 2:  # constant bounds: the loops unroll
                        total = 25
                        for dy in range(-2, 3):
                            q = p + dy * width
                            for dx in range(-2, 3):
                                same += start[q + dx] == cand
                    else:
                        total = 0
                        for yy in range(max(y - 2, 0), min(y + 3, height)):
                            for xx in range(max(x - 2, 0), min(x + 3, width)):
                                total += 1
                                same += start[yy * width + xx] == cand
                    agree = (same - 1) / (total - 1) if total > 1 else 1.0
                    share = strength * flat * agree * agree
            d_cand = 0.0
            for j in range(dims):
                t = v[j] - palette[cand, j]
                d_cand += t * t
            best = cand
            best_d = d_cand
            r_cand = math.sqrt(d_cand)
            bound = 2.0 * r_cand  # r_cand + r_best, tightened whenever best improves
            for i in range(k - 1):
                if gaps[cand, i] > bound:
                    break
                e = order[cand, i]
                d = 0.0
                for j in range(dims):
                    t = v[j] - palette[e, j]
                    d += t * t
                if d < best_d or (d == best_d and e < best):
                    best = e
                    best_d = d
                    bound = r_cand + math.sqrt(d)
            labels[p] = best
            if channels == 4:  # premultiplied RGB and alpha, in 8-bit levels
                a_px = float(rgb[p, 3]) / 255.0
                a_pal = float(palette_rgb[best, 3]) / 255.0
                for j in range(3):
                    t = float(rgb[p, j]) * a_px - float(palette_rgb[best, j]) * a_pal
                    sq += t * t
                t = float(rgb[p, 3]) - float(palette_rgb[best, 3])
                sq += t * t
            else:
                for j in range(3):
                    t = float(rgb[p, j]) - float(palette_rgb[best, j])
                    sq += t * t
            ahead = x + 2 if forward else x
            behind = x if forward else x + 2
            for j in range(dims):
                err = share * (v[j] - palette[best, j])
                cur[ahead, j] += err * (7.0 / 16.0)
                nxt[behind, j] += err * (3.0 / 16.0)
                nxt[x + 1, j] += err * (5.0 / 16.0)
                nxt[ahead, j] += err * (1.0 / 16.0)
        cur, nxt = nxt, cur
        for i in range(width + 2):
            for j in range(dims):
                nxt[i, j] = 0.0
    return sq


def floyd_steinberg(
    image: NDArray[np.uint8],
    start: NDArray[np.intp],
    palette: NDArray[np.float64],
    palette_rgb: NDArray[np.uint8],
    *,
    strength: float = DEFAULT_STRENGTH,
    inverse: NDArray[np.intp] | None = None,
    space_colors: NDArray[np.float64] | None = None,
    edge_aware: bool = False,
    level: float = 1.0,
) -> tuple[NDArray[np.intp], float]:
    """Dither ``image`` ``(h, w, 3|4)`` uint8; return ``(h w,)`` palette labels and the summed squared error.

    ``start`` ``(h w,)`` is every pixel's undithered palette entry; ``palette`` ``(k, d)``
    is in the working space (``d = 4`` for RGBA: premultiplied color and alpha) and
    ``palette_rgb`` ``(k, 3|4)`` is its uint8 RGB(A). Pixel coordinates are the pixels'
    own levels (an RGB image in the ``rgb`` space), or come from a fold: ``inverse``
    ``(h w,)`` into ``space_colors`` ``(m, d)``. The error is summed over RGB channels in
    8-bit levels, for RGBA over premultiplied RGB and alpha; fully transparent pixels keep
    their ``start`` entry and take and pass no error. ``edge_aware`` scales each pixel's
    share of the error by its flatness and its agreement with ``start``, and drops errors
    carried to a pixel below :data:`QUIET_LEVELS` of ``level`` (one 8-bit level in the
    working space's units) (module docstring).
    """
    height, width, channels = image.shape
    n = height * width
    if start.shape != (n,) or (inverse is not None and inverse.shape != (n,)):
        raise ValidationError(f"the per-pixel labels or fold do not match the {height}x{width} image")
    if inverse is None and (channels != 3 or palette.shape[1] != 3):
        raise ValidationError("an RGBA image or a palette in another space needs the fold (inverse, space_colors)")
    pal = np.ascontiguousarray(palette, dtype=np.float64)
    order, gaps = palette_neighbours(pal)
    labels = np.empty(n, dtype=np.intp)
    dims = pal.shape[1]
    arrays: list[NDArray[Any]] = [
        np.ascontiguousarray(image.reshape(n, channels)),
        np.ascontiguousarray(start, dtype=np.intp),
        np.zeros(0, np.intp) if inverse is None else np.ascontiguousarray(inverse, dtype=np.intp),
        np.zeros((0, dims)) if space_colors is None else np.ascontiguousarray(space_colors, dtype=np.float64),
        pal,
        np.ascontiguousarray(palette_rgb, dtype=np.uint8),
        order,
        gaps,
        labels,
        *(np.zeros((width + 2, dims)) for _ in range(2)),  # the error rows
        *(np.empty(dims) for _ in range(3)),  # the clipped color, the palette's box
    ]
    kernel: Any = _floyd_steinberg
    if n <= INTERPRETED_PIXELS:  # memoryviews: their items are Python numbers, read several times faster
        a: list[Any] = [arr.data for arr in arrays]
    else:
        from kmeans.image._dither_jit import floyd_steinberg_kernel as kernel

        a = arrays
    sq = kernel(
        *a[:4],
        height,
        width,
        *a[4:8],
        float(strength),
        EDGE_LEVELS,
        (QUIET_LEVELS * level) ** 2,
        *a[8:],
        dims,
        int(edge_aware),
    )
    return labels, float(sq)
