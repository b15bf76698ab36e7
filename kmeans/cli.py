"""The ``kmeans`` command line: ``kmeans info``, ``kmeans quantize``, ``kmeans bench``.

Each subcommand lives in its own module and registers itself through ``add_parser``;
everything here uses only the public API.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from collections.abc import Sequence

from kmeans import __version__, registry

#: Modules that contribute subcommands: each has ``add_parser(subparsers)``.
SUBCOMMAND_MODULES: tuple[str, ...] = ("kmeans.image.cli", "kmeans.bench.cli")


def _spark_status() -> str:
    try:
        import pyspark
    except ImportError:
        return "pyspark not installed (pip install 'kmeans[spark]')"
    java = shutil.which("java")
    if java is None:
        return f"pyspark {pyspark.__version__} installed, but no 'java' on PATH (install Java 17 or 21)"
    return f"pyspark {pyspark.__version__}, java at {java}"


def _image_status() -> str:
    try:
        import PIL
    except ImportError:
        return "Pillow not installed, so 'kmeans quantize' is unavailable (pip install 'kmeans[image]')"
    try:
        import rich  # noqa: F401
    except ImportError:
        return f"Pillow {PIL.__version__} (no progress bars: pip install rich)"
    return f"Pillow {PIL.__version__}, rich progress bars"


def cmd_info(args: argparse.Namespace) -> int:
    print(f"kmeans {__version__} (python {sys.version.split()[0]})")
    for title, reg in (
        ("backends", registry.backends),
        ("initializers", registry.initializers),
        ("distances", registry.distances),
    ):
        print(f"{title}: {', '.join(reg)}")
    print(f"spark: {_spark_status()}")
    print(f"image: {_image_status()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kmeans", description="K-means clustering on NumPy or Spark.")
    parser.add_argument("--version", action="version", version=f"kmeans {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="registered strategies and whether Spark/Java are usable")
    info.set_defaults(func=cmd_info)
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
