"""``kmeans bench paper``, ``kmeans bench scaling``, ``kmeans bench shapes`` and ``kmeans bench minibatch``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from kmeans.errors import ValidationError


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(float(v)) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_parser(subparsers: Any) -> None:
    """Register ``bench`` with its ``paper`` and ``scaling`` subcommands."""
    bench = subparsers.add_parser("bench", help="benchmarks: the paper's tables, and how cost scales")
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)

    paper = sub.add_parser("paper", help="the paper's Tables 1-3 and Figures 5-9 on this machine")
    paper.add_argument("--quick", action="store_true", help="a subset (k 2,10 x 1,5 iterations, 1/4 image) in ~1 min")
    paper.add_argument("--out", type=Path, default=Path("bench-paper"), help="output folder (default: bench-paper)")
    paper.add_argument("--k", type=_int_list, help="cluster counts (default: 2,3,5,8,10)")
    paper.add_argument("--iterations", type=_int_list, help="iteration counts (default: 1,5,10,20,50)")
    paper.add_argument("--repeats", type=int, help="runs per cell at most (default 5; 3 with --quick)")
    paper.add_argument("--cell-budget", type=float, help="stop repeating a cell after this many seconds (default 5)")
    paper.add_argument("--downsample", type=int, help="keep every n-th pixel per axis (default 1; 4 with --quick)")
    paper.add_argument(
        "--only", type=_name_list, help="implementations to run, e.g. numpy,paper-numpy (default: all available)"
    )
    paper.add_argument(
        "--all-port-cells", action="store_true", help="run the paper's slow RDD and ML ports on every cell too"
    )
    paper.set_defaults(func=cmd_paper)

    shapes = sub.add_parser("shapes", help="fit time vs scikit-learn, scikit-learn-intelex and faiss from d=3 to d=768")
    shapes.add_argument("--quick", action="store_true", help="three small cells in well under a minute")
    shapes.add_argument("--cells", type=_name_list, help="substrings of cell names to run (default: all)")
    shapes.add_argument(
        "--engines", type=_name_list, help="reference engines: sklearn,sklearnex,faiss (default: installed)"
    )
    shapes.add_argument("--repeats", type=int, default=3, help="interleaved rounds per cell (default 3)")
    shapes.add_argument(
        "--spark",
        action="store_true",
        help="the Spark case instead: spark-rdd vs MLlib per iteration and set-up (4M x 16, k=64, 8 partitions)",
    )
    shapes.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    shapes.set_defaults(func=cmd_shapes)

    minibatch = sub.add_parser("minibatch", help="mini-batch k-means vs scikit-learn's MiniBatchKMeans, same steps")
    minibatch.add_argument("--quick", action="store_true", help="200,000 rows, k=64, in a few seconds")
    minibatch.add_argument("--rows", type=_positive_int, help="rows (default 10,000,000)")
    minibatch.add_argument("--k", type=_positive_int, help="clusters (default 256)")
    minibatch.add_argument("--d", type=_positive_int, help="features (default 16)")
    minibatch.add_argument("--batch-size", type=_positive_int, help="rows per step (default 4096)")
    minibatch.add_argument(
        "--epochs", type=_positive_int, help="max_iter in epochs: steps = epochs * rows // batch (1)"
    )
    minibatch.add_argument("--rounds", type=_positive_int, default=1, help="interleaved rounds (default 1)")
    minibatch.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    minibatch.set_defaults(func=cmd_minibatch)

    scaling = sub.add_parser("scaling", help="time per iteration and peak memory as rows, k, d, partitions grow")
    scaling.add_argument("--out", type=Path, default=Path("bench-scaling"), help="output folder")
    scaling.add_argument("--quick", action="store_true", help="a small grid that runs in about a minute")
    scaling.add_argument("--rows", type=_int_list, help="row counts to sweep (default 1e4..2e7)")
    scaling.add_argument("--k", type=_int_list, help="cluster counts to sweep (default 2..256)")
    scaling.add_argument("--d", type=_int_list, help="dimensions to sweep (default 2..64)")
    scaling.add_argument("--partitions", type=_int_list, help="Spark partitions to sweep (default 1,2,4,8)")
    scaling.add_argument("--engines", type=_name_list, help="engines: backends, sklearn, faiss (default: available)")
    scaling.add_argument("--iterations", type=int, help="Lloyd iterations per fit (default 10)")
    scaling.add_argument("--data", choices=("blobs", "image"), help="synthetic blobs or random 8-bit images")
    scaling.add_argument("--max-seconds", type=float, help="skip larger sizes of an engine once a fit takes this long")
    scaling.set_defaults(func=cmd_scaling)


@contextmanager
def _progress(total_hint: str) -> Iterator[tuple[Callable[[str], None], Callable[[int], None]]]:
    """``(say, set_total)`` driving a rich progress bar on stderr (plain lines without rich)."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:
        yield (lambda msg: print(msg, flush=True)), (lambda n: None)
        return
    console = Console(stderr=True)
    if not console.is_terminal:  # logs (CI, redirected output): one plain line per step
        yield (lambda msg: print(msg, file=sys.stderr, flush=True)), (lambda n: None)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(total_hint, total=None)
        state = {"started": False}

        def say(msg: str) -> None:
            if state["started"]:
                bar.advance(task)
            bar.update(task, description=msg)

        def set_total(n: int) -> None:
            bar.update(task, total=n + 1, completed=0)
            state["started"] = True

        yield say, set_total
        bar.update(task, description="done", completed=bar.tasks[0].total or 0)


def cmd_paper(args: argparse.Namespace) -> int:
    from kmeans.bench.paper import FULL_GRID, QUICK_GRID, run_paper, summary_lines, write_report

    grid = QUICK_GRID if args.quick else FULL_GRID
    changes: dict[str, Any] = {}
    for field, value in (
        ("ks", args.k),
        ("iterations", args.iterations),
        ("repeats", args.repeats),
        ("cell_budget", args.cell_budget),
        ("downsample", args.downsample),
        ("only", args.only),
    ):
        if value is not None:
            changes[field] = value
    if args.all_port_cells:
        changes.update(rdd_port_cells=None, ml_port_ks=None)
    if changes.get("repeats", 1) < 1 or changes.get("downsample", 1) < 1 or changes.get("cell_budget", 1) < 0:
        raise ValidationError("--repeats and --downsample must be >= 1 and --cell-budget >= 0")
    grid = attrs.evolve(grid, **changes)
    with _progress("kmeans bench paper") as (say, set_total):
        result = run_paper(
            grid, progress=say, on_start=set_total, on_partial=lambda partial: write_report(partial, args.out)
        )
    written = write_report(result, args.out)
    print("\n".join(summary_lines(result)))
    print(
        f"wrote {len(written)} files to {args.out}/ (report.md, results.json, figures) in {result.wall_seconds:.0f} s"
    )
    return 0


def _emit(table: str, out: Path | None) -> int:
    """Print a Markdown table and, with ``--out``, write it atomically."""
    print(table)
    if out is not None:
        from kmeans.io import write_atomic

        write_atomic(out, (table + "\n").encode())
    return 0


def cmd_shapes(args: argparse.Namespace) -> int:
    from kmeans.bench.shapes import FULL_CELLS, QUICK_CELLS, engines, format_table, run_cell

    if args.repeats < 1:
        raise ValidationError(f"--repeats must be at least 1, got {args.repeats}")
    if args.spark:
        return _spark_case(args)
    cells = QUICK_CELLS if args.quick else FULL_CELLS
    if args.cells:
        cells = tuple(c for c in cells if any(part in c.name for part in args.cells))
        if not cells:
            raise ValidationError(f"no cell name contains any of {', '.join(args.cells)}")
    fits, missing = engines(args.engines)
    for name, why in missing.items():
        print(f"{name}: unavailable ({why})")
    names = list(fits)
    rows = []
    for cell in cells:
        rows.append(run_cell(cell, fits, args.repeats))
        print(format_table(rows[-1:], names).splitlines()[-1], flush=True)
    table = format_table(rows, names)
    return _emit(table, args.out)


def _spark_case(args: argparse.Namespace) -> int:
    import attrs

    from kmeans.bench._spark import get_or_start_session, spark_available
    from kmeans.bench.spark_case import FULL_SPARK_CASE, QUICK_SPARK_CASE, format_spark_case, run_spark_case

    problem = spark_available()
    if problem is not None:
        raise ValidationError(f"the Spark case needs Spark: {problem}")
    case = attrs.evolve(QUICK_SPARK_CASE if args.quick else FULL_SPARK_CASE, repeats=args.repeats)
    spark, _ = get_or_start_session("local[2]")
    table = format_spark_case(case, run_spark_case(spark, case))
    return _emit(table, args.out)


def cmd_minibatch(args: argparse.Namespace) -> int:
    from kmeans.bench.minibatch import FULL_CASE, QUICK_CASE, format_table, run

    case = QUICK_CASE if args.quick else FULL_CASE
    changes = {
        name: value
        for name, value in (
            ("n", args.rows),
            ("k", args.k),
            ("d", args.d),
            ("batch_size", args.batch_size),
            ("epochs", args.epochs),
        )
        if value is not None
    }
    case = attrs.evolve(case, **changes)
    table = format_table(case, run(case, rounds=args.rounds))
    return _emit(table, args.out)


def cmd_scaling(args: argparse.Namespace) -> int:
    from kmeans.bench.scaling import FULL_SCALING, QUICK_SCALING, run_scaling, write_scaling_report

    grid = QUICK_SCALING if args.quick else FULL_SCALING
    changes: dict[str, Any] = {}
    for field, value in (
        ("rows", args.rows),
        ("ks", args.k),
        ("ds", args.d),
        ("partitions", args.partitions),
        ("engines", args.engines),
        ("iterations", args.iterations),
        ("data", args.data),
        ("max_seconds", args.max_seconds),
    ):
        if value is not None:
            changes[field] = value
    grid = attrs.evolve(grid, **changes)
    with _progress("kmeans bench scaling") as (say, set_total):
        result = run_scaling(grid, progress=say, on_start=set_total)
    written = write_scaling_report(result, args.out)
    print("\n".join(result.summary_lines()))
    print(f"wrote {len(written)} files to {args.out}/ in {result.wall_seconds:.0f} s")
    return 0
