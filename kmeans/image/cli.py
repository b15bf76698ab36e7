"""``kmeans quantize``: reduce images to ``k`` colors from the command line.

Every problem is one line on stderr, and the exit code is 2 if any input failed.
Problems that names and paths show (missing inputs, bad options, an output that would
replace an input or an existing file) are found for every input before anything is
written. After that, each input is read, quantized and written on its own: a damaged
file is reported and the others are still written (with ``--shared-palette`` every
input is read before the fit, so one bad input means nothing is written). Outputs are
written atomically and never over an input; an existing output is replaced (so a
command can be run again) unless ``--no-clobber`` is given. SIGTERM during a write
removes the temporary file and exits with 143.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from kmeans import IterationRecord, KMeansError
from kmeans.data import raccoon_path
from kmeans.image.colorspace import COLOR_SPACES, DEFAULT_TOL
from kmeans.image.dither import DEFAULT_STRENGTH, DITHERS, check_dither
from kmeans.image.io import (
    LOSSY_FORMATS,
    ImageFileError,
    LossyOutputWarning,
    Terminated,
    UInt8Array,
    check_output,
    decode_image,
    load_image,
)
from kmeans.image.quality import QualityTooLowError, parse_quality
from kmeans.image.quantize import (
    QuantizeResult,
    check_indexed,
    check_n_clusters,
    check_strategy_names,
    quantize,
    quantize_shared,
    read_input,
)

PROG = "kmeans quantize"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``quantize`` on the ``kmeans`` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "quantize",
        help="reduce images to k colors (color quantization)",
        description="Reduce images to k colors with K-means. With no input, quantizes the bundled raccoon photo.",
    )
    p.add_argument(
        "inputs", nargs="*", metavar="IMAGE", help="input images, - for stdin (default: the bundled sample photo)"
    )
    p.add_argument(
        "-k",
        "--colors",
        dest="n_clusters",
        metavar="K",
        type=int,
        default=None,
        help="number of colors (default 8; with --quality the most allowed, default 256)",
    )
    p.add_argument(
        "--quality",
        metavar="MIN-MAX",
        help="pngquant's 0-100 scale: the fewest colors meeting MAX; exit 99, nothing written, if MIN is missed",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file (one input only); format from the extension; - for stdout (PNG, the default for stdin)",
    )
    p.add_argument(
        "--out-dir", metavar="DIR", help="folder for the outputs, named STEM-kK.png (default: the current folder)"
    )
    p.add_argument("--backend", metavar="NAME", default="numpy", help="engine: numpy (default), spark-rdd, ...")
    p.add_argument(
        "--init", metavar="NAME", default="k-means++", help="initializer: k-means++ (default), random, k-means||, ..."
    )
    p.add_argument("--color-space", choices=COLOR_SPACES, default="rgb", help="space to cluster in (default rgb)")
    p.add_argument(
        "--dither",
        choices=DITHERS,
        default="none",
        help=(
            "map pixels by error diffusion in the color space: floyd-steinberg everywhere, edge-aware "
            "only in smooth areas that would band (default none: nearest palette color)"
        ),
    )
    p.add_argument(
        "--dither-strength",
        metavar="S",
        type=float,
        default=DEFAULT_STRENGTH,
        help=f"share of each pixel's error passed on, 0 to 1 (default {DEFAULT_STRENGTH:g})",
    )
    p.add_argument("--seed", metavar="N", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--max-iter", metavar="N", type=int, default=300, help="maximum Lloyd iterations (default 300)")
    p.add_argument("--shared-palette", action="store_true", help="one palette fitted to all inputs together")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--indexed",
        dest="indexed",
        action="store_const",
        const=True,
        default=None,
        help="demand a palette PNG, alpha in tRNS (the default for .png when k <= 256)",
    )
    kind.add_argument(
        "--truecolor", dest="indexed", action="store_const", const=False, help="write a truecolor PNG, not a palette"
    )
    p.add_argument(
        "-n", "--no-clobber", action="store_true", help="refuse to replace existing outputs (default: replace them)"
    )
    p.add_argument("--overwrite", action="store_true", help=argparse.SUPPRESS)  # the default now; old scripts pass it
    p.add_argument(
        "--max-pixels", metavar="N", type=int, default=None, help="raise Pillow's decompression-bomb limit to N pixels"
    )
    p.add_argument(
        "--metrics",
        action="store_true",
        help="also report SSIM and mean CIEDE2000 of the written image (needs scikit-image: kmeans[metrics])",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run)
    p.error = _usage_error  # type: ignore[method-assign]  # argparse errors too: one line, exit code 2
    return p


def _usage_error(message: str) -> NoReturn:
    print(f"{PROG}: error: {message} (see {PROG} --help)", file=sys.stderr)
    sys.exit(2)


STDIO = Path("-")

#: Exit code when ``--quality``'s minimum is missed (pngquant's): nothing is written for that input.
QUALITY_EXIT = 99


def _outputs(args: argparse.Namespace, inputs: list[Path]) -> list[Path]:
    k = args.n_clusters
    if STDIO in inputs and len(inputs) > 1:
        raise ImageFileError("- (stdin) must be the only input")
    if inputs == [STDIO] and args.output is None and args.out_dir is None:
        return [STDIO]  # a filter: stdin to stdout
    if args.output is not None:
        if len(inputs) > 1:
            raise ImageFileError("-o/--output names one file; with several inputs use --out-dir DIR")
        if args.out_dir is not None:
            raise ImageFileError("give either -o/--output or --out-dir, not both")
        return [Path(args.output)]
    folder = Path(args.out_dir) if args.out_dir is not None else Path(".")
    if not folder.is_dir():
        raise ImageFileError(f"{folder}: output directory does not exist (create it first)")
    outs = [folder / f"{p.stem}-k{k}.png" for p in inputs]
    if len({o.resolve() for o in outs}) < len(outs):
        raise ImageFileError("two inputs have the same file name, so their outputs would collide; quantize them apart")
    return outs


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return a.samefile(b)
    return a.resolve() == b.resolve()


def _check_paths(args: argparse.Namespace, inputs: list[Path], outputs: list[Path]) -> None:
    for path in inputs:
        if path == STDIO:
            if sys.stdin.isatty():
                raise ImageFileError("- reads the image from stdin, which is a terminal; pipe or redirect a file")
        elif not path.exists():
            raise ImageFileError(f"{path}: no such file")
    for out in outputs:
        if out == STDIO:
            if sys.stdout.isatty():
                raise ImageFileError("-o - writes the image to stdout, which is a terminal; redirect it to a file")
            continue
        for path in inputs:
            if _same_file(out, path):
                raise ImageFileError(f"{out}: the output would replace the input {path}; choose another output name")
        if args.no_clobber and out.exists():
            raise ImageFileError(f"{out}: already exists, and --no-clobber keeps it; remove it or drop --no-clobber")
        check_output(out, has_alpha=False, indexed=args.indexed, overwrite=True)


class _Bar:
    """One progress line per input (or per shared palette) on stderr, with its stage:
    ``load``, ``fold``, ``fit`` (each Lloyd iteration with its real center shift against
    ``tol``), ``map`` or ``dither``, ``write``. The count runs over the stages and the
    iterations; once the fit stops, the total becomes what is left, so every bar completes,
    and its iteration count is the summary's."""

    def __init__(self, progress: Any, max_iter: int, tol: float) -> None:
        self._progress, self._max_iter, self._tol = progress, max_iter, tol
        self._task: Any = None
        self._name, self._stage, self._outputs = "", "", 1

    def begin(self, name: str, outputs: int = 1) -> None:
        """Start a line for ``name`` at its load stage; ``outputs`` images will be written."""
        self._name, self._stage, self._outputs = name, "load", outputs
        if self._progress is not None:
            total = 2 + self._max_iter + 2 * outputs
            self._task = self._progress.add_task(f"{name}  load", total=total)

    def stage(self, stage: str) -> None:
        """The previous stage is done and ``stage`` starts."""
        if self._progress is not None and self._task is not None:
            if self._stage == "fit":  # the fit stopped: what is left is known
                completed = self._completed()
                self._progress.update(self._task, total=completed + 2 * self._outputs)
            else:
                self._progress.advance(self._task)
            self._progress.update(self._task, description=f"{self._name}  {stage}")
        self._stage = stage

    def iteration(self, record: IterationRecord) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                advance=1,
                description=f"{self._name}  fit  iteration {record.iteration + 1}, "
                f"center shift {record.center_shift:.3g} (stops at <= {self._tol:g})",
            )

    def end(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            self._progress.update(self._task, description=f"{self._name}  done")
        self._task = None

    def abandon(self) -> None:
        """The input failed (its error is printed): remove its line."""
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
        self._task = None

    def _completed(self) -> float:
        for task in self._progress.tasks:
            if task.id == self._task:
                return float(task.completed)
        return 0.0


@contextlib.contextmanager
def _progress(enabled: bool, max_iter: int, tol: float) -> Iterator[_Bar]:
    """A :class:`_Bar` drawing with rich on stderr, or doing nothing when disabled
    (rich is then not imported: 50 ms of start-up)."""
    if enabled:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:  # rich is optional: no bar, same results
            enabled = False
    if not enabled:
        yield _Bar(None, max_iter, tol)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield _Bar(progress, max_iter, tol)


def _summary(result: QuantizeResult, args: argparse.Namespace, source: Path, output: Path) -> dict[str, Any]:
    summary = {
        "input": str(source),
        "output": str(output),
        "backend": args.backend,
        "init": args.init,
        "seed": args.seed,
        **result.summary(),
    }
    if args.metrics:
        from kmeans.image.metrics import quality

        # Of the file as written: a lossy format is decoded again (stdout is always PNG).
        lossy = result.written["format"] in LOSSY_FORMATS and output != STDIO
        summary["written"].update(quality(result.original, load_image(output) if lossy else result.image))
    return summary


def _db(psnr: float | None) -> str:
    return "inf (lossless)" if psnr is None else f"{psnr:.2f} dB"


_MODES = {"P": "palette", "L": "gray", "LA": "gray + alpha", "RGB": "truecolor", "RGBA": "truecolor + alpha"}


def _format(s: dict[str, Any]) -> str:
    t = s["timings"]
    out = s["written"]
    quality = f"MSE {out['mse']:.3f}, PSNR {_db(out['psnr'])} (RGB, the written file vs the original)"
    if out["format"] in LOSSY_FORMATS:
        quality += f"; before {out['format']} encoding PSNR {_db(s['psnr'])}"
    if "quality" in s:
        quality += f"; quality {s['quality']} (pngquant's 0-100 scale, undithered palette)"
    return "\n".join(
        [
            f"{s['input']} -> {s['output']}  ({s['width']}x{s['height']}, k={s['n_clusters']}, {s['color_space']}, "
            f"{s['backend']}, {s['init']}, seed {s['seed']}"
            + ("" if s["dither"] == "none" else f", {s['dither']} dither {s['dither_strength']:g}")
            + ")",
            f"  colors    {s['colors_before']:,} -> {out['colors']:,}",
            f"  quality   {quality}",
            f"  k-means   {s['iterations']} iterations, inertia {s['inertia']:.6g} ({s['color_space']} units)",
            f"  output    {out['format']} {_MODES.get(out['mode'], out['mode'])}, {out['bytes']:,} bytes",
            *([f"  metrics   SSIM {out['ssim']:.4f}, mean CIEDE2000 {out['ciede2000']:.3f}"] if "ssim" in out else []),
            "  time      " + "  ".join(f"{name} {t[name]:.3f}s" for name in ("load", "fit", "map", "write", "total")),
        ]
    )


def _validate(args: argparse.Namespace) -> None:
    args.quality = None if args.quality is None else parse_quality(args.quality)
    if args.n_clusters is None:
        args.n_clusters = 8 if args.quality is None else 256
    check_n_clusters(args.n_clusters)
    if args.indexed:
        check_indexed(args.n_clusters)
    if args.overwrite and args.no_clobber:
        raise ImageFileError(
            "--overwrite and --no-clobber contradict each other; existing outputs are replaced by default"
        )
    check_strategy_names(args.backend, args.init)
    check_dither(args.dither, args.dither_strength)
    if args.metrics:
        from kmeans.image.metrics import _skimage

        _skimage()  # the install hint before any work
    if args.max_iter < 1:
        raise ImageFileError(f"--max-iter must be >= 1, got {args.max_iter}")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise ImageFileError(f"--max-pixels must be >= 1, got {args.max_pixels}")


def _printable(text: str, stream: Any) -> str:
    """``text`` as ``stream`` can encode it: undecodable file-name bytes (kept by Python as
    lone surrogates) become ``\\xNN``, characters outside the stream's encoding ``\\uNNNN``."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)


def _say(text: str, stream: Any) -> None:
    print(_printable(text, stream), file=stream, flush=True)


def _error(exc: BaseException) -> str:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{PROG}: error: {message}"


def run(args: argparse.Namespace) -> int:
    """Entry point of ``kmeans quantize``; returns the exit code."""
    try:
        return _run(args)
    except QualityTooLowError as exc:  # pngquant's exit code for a missed --quality minimum
        _say(_error(exc), sys.stderr)
        return QUALITY_EXIT
    except (KMeansError, OSError) as exc:
        _say(_error(exc), sys.stderr)
        return 2
    except Terminated as exc:
        _say(f"{PROG}: terminated by SIGTERM; the output being written was removed", sys.stderr)
        return int(exc.code) if isinstance(exc.code, int) else 143


def _run(args: argparse.Namespace) -> int:
    _validate(args)
    inputs = [Path(p) for p in args.inputs] or [raccoon_path()]
    outputs = _outputs(args, inputs)
    _check_paths(args, inputs, outputs)
    params: dict[str, Any] = {
        "backend": args.backend,
        "init": args.init,
        "color_space": args.color_space,
        "seed": args.seed,
        "max_iter": args.max_iter,
        "dither": args.dither,
        "dither_strength": args.dither_strength,
        "quality": args.quality,
    }
    show = not args.quiet and not args.json and sys.stderr.isatty()
    summaries: list[dict[str, Any]] = []
    failed = too_low = 0
    with _progress(show, args.max_iter, DEFAULT_TOL[args.color_space]) as bar:
        params.update(callbacks=[bar.iteration], on_stage=bar.stage)
        if args.shared_palette:
            bar.begin(f"{len(inputs)} images, one palette", outputs=len(inputs))
            loaded = [_load(source, out, args) for source, out in zip(inputs, outputs, strict=True)]
            results = quantize_shared([px for px, _ in loaded], args.n_clusters, **params)
            for source, out, (_, load_s), result in zip(inputs, outputs, loaded, results, strict=True):
                result.timings["load"] = load_s
                bar.stage("write")
                _save(result, out, args)
                summaries.append(_summary(result, args, source, out))
            bar.end()
        else:
            for source, out in zip(inputs, outputs, strict=True):
                try:
                    bar.begin(_printable(str(source), sys.stderr))
                    pixels, load_s = _load(source, out, args)
                    result = _quantize(source, pixels, args.n_clusters, params)
                    result.timings["load"] = load_s
                    bar.stage("write")
                    _save(result, out, args)
                    bar.end()
                except (KMeansError, OSError) as exc:
                    bar.abandon()
                    if len(inputs) == 1:
                        raise
                    failed += 1
                    too_low += isinstance(exc, QualityTooLowError)
                    _say(_error(exc), sys.stderr)
                    summaries.append({"input": str(source), "output": None, "error": _error(exc)})
                    continue
                summaries.append(_summary(result, args, source, out))
    report = sys.stderr if STDIO in outputs else sys.stdout
    if args.json:
        doc: dict[str, Any] = summaries[0] if len(summaries) == 1 else {"images": summaries}
        # ASCII only, so any stream encoding takes it; on stderr when the image went to stdout.
        print(json.dumps(doc, indent=1, allow_nan=False), file=report)
    elif not args.quiet:
        written = [s for s in summaries if s["output"] is not None]
        if written:
            _say("\n".join(_format(s) for s in written), report)
    if failed:
        _say(f"{PROG}: error: {failed} of {len(inputs)} inputs failed (see above); the others were written", sys.stderr)
        return QUALITY_EXIT if too_low == failed else 2
    return 0


def _quantize(source: Path, pixels: UInt8Array, k: int, params: dict[str, Any]) -> QuantizeResult:
    """:func:`quantize`, with the input's name in a missed quality's message."""
    try:
        return quantize(pixels, k, **params)
    except QualityTooLowError as exc:
        raise QualityTooLowError(
            f"{source}: {exc}; nothing written", quality=exc.quality, minimum=exc.minimum, n_colors=exc.n_colors
        ) from None


def _save(result: QuantizeResult, out: Path, args: argparse.Namespace) -> None:
    """Write one output; a lossy format's warning becomes one ``warning:`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LossyOutputWarning)
        if out == STDIO:
            data = result.to_bytes("PNG", indexed=args.indexed)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            result.save(out, indexed=args.indexed, overwrite=not args.no_clobber)
    for w in caught:
        if issubclass(w.category, LossyOutputWarning):
            _say(f"{PROG}: warning: {w.message}", sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _load(source: Path, out: Path, args: argparse.Namespace) -> tuple[UInt8Array, float]:
    """Read ``source`` (``-``: stdin), then check ``out`` again now that the alpha channel is known."""
    if source == STDIO:
        t0 = time.perf_counter()
        pixels = decode_image(sys.stdin.buffer.read(), "<stdin>", max_pixels=args.max_pixels)
        seconds = time.perf_counter() - t0
    else:
        pixels, seconds = read_input(source, max_pixels=args.max_pixels)
    if out != STDIO:
        check_output(out, has_alpha=pixels.shape[2] == 4, indexed=args.indexed, overwrite=True)
    return pixels, seconds
