"""``kmeans sweep``: fit a range of k on a data file and report inertia, silhouette, Calinski-Harabasz.

Input: ``.npy`` (a 2-D numeric array), ``.csv`` (numbers separated by commas; a first line
that is not numeric is a header and skipped) or ``.parquet`` (every numeric column). The
table goes to stdout with the suggested k; ``--plot`` writes the elbow and silhouette figure
and ``--json`` the scores, both atomically (:func:`kmeans.io.write_atomic`). A bad input or
option is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kmeans.errors import KMeansError, ValidationError
from kmeans.sweep import RULES, SILHOUETTE_SIZE, parse_ks, sweep

FORMATS = (".npy", ".csv", ".parquet")


def read_matrix(path: Path) -> NDArray[Any]:
    """The ``(n, d)`` numeric array stored in ``path`` (``.npy``, ``.csv`` or ``.parquet``)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValidationError(f"{path}: unknown format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif suffix == ".csv":
        arr = _read_csv(path)
    else:
        arr = _read_parquet(path)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise ValidationError(f"{path}: expected a 2-D numeric array, got shape {arr.shape} of {arr.dtype}")
    out: NDArray[Any] = arr
    return out


def _read_csv(path: Path) -> NDArray[Any]:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
    try:
        [float(v) for v in first.split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header line
    try:
        return np.loadtxt(path, delimiter=",", skiprows=skip, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValidationError(f"{path}: not a CSV of numbers ({exc})") from None


def _read_parquet(path: Path) -> NDArray[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValidationError(f"reading .parquet needs pyarrow ({exc}): pip install pyarrow") from None
    table = pq.read_table(path)
    import pyarrow.types as pt

    columns = [name for name, field in zip(table.column_names, table.schema, strict=True) if _numeric(pt, field.type)]
    if not columns:
        raise ValidationError(f"{path}: no numeric column")
    return np.column_stack([table.column(name).to_numpy(zero_copy_only=False) for name in columns])


def _numeric(pt: Any, data_type: Any) -> bool:
    return bool(pt.is_integer(data_type) or pt.is_floating(data_type))


def add_parser(subparsers: Any) -> None:
    """Register ``sweep``."""
    p = subparsers.add_parser("sweep", help="fit a range of k; inertia, silhouette, Calinski-Harabasz; suggest k")
    p.add_argument("data", type=Path, help="input: .npy, .csv or .parquet (rows are points)")
    p.add_argument("-k", "--k", dest="ks", default="2..20", help="k values: 2..20 (inclusive) or 2,4,8 (default 2..20)")
    p.add_argument("--seed", type=int, default=0, help="seed of every fit and of the silhouette sample (default 0)")
    p.add_argument("--distance", default="l2", help="distance (default l2)")
    p.add_argument("--backend", default="numpy", help="backend (default numpy)")
    p.add_argument("--rule", choices=RULES, default="silhouette", help="suggestion rule (default silhouette)")
    p.add_argument(
        "--silhouette-size",
        type=int,
        default=SILHOUETTE_SIZE,
        help=f"rows in the silhouette sample (default {SILHOUETTE_SIZE})",
    )
    p.add_argument("--warm-start", action="store_true", help="start each k from the previous k's centers")
    p.add_argument("--plot", type=Path, help="write the elbow + silhouette figure here (.png, .svg, .pdf)")
    p.add_argument("--json", type=Path, help="write the scores here as JSON")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    try:
        ks = parse_ks(args.ks)
        if args.plot is not None and args.plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise ValidationError(f"--plot {args.plot}: use a .png, .svg or .pdf file")
        X = read_matrix(args.data)
        result = sweep(
            X,
            ks,
            seed=args.seed,
            distance=args.distance,
            backend=args.backend,
            silhouette_size=args.silhouette_size,
            warm_start=args.warm_start,
        )
        best = result.suggest(args.rule)
        if args.plot is not None:
            result.plot(args.plot, rule=args.rule)
        if args.json is not None:
            from kmeans.io import write_atomic

            doc = {
                "k": result.ks.tolist(),
                "inertia": result.inertia.tolist(),
                "silhouette": [None if not np.isfinite(v) else v for v in result.silhouette.tolist()],
                "calinski_harabasz": [None if not np.isfinite(v) else v for v in result.calinski_harabasz.tolist()],
                "n_iter": result.n_iter.tolist(),
                "silhouette_sample": int(result.sample.shape[0]),
                "seed": result.seed,
                "rule": args.rule,
                "suggested_k": best,
            }
            write_atomic(args.json, (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode())
    except (KMeansError, OSError) as exc:
        print(f"kmeans sweep: {exc}", file=sys.stderr)
        return 2
    print(result.table())
    print(f"suggested k: {best} ({args.rule})")
    return 0
