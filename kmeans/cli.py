"""The ``kmeans`` command line: ``kmeans info``, ``kmeans quantize``, ``kmeans bench``, ``kmeans sweep``.

Each subcommand lives in its own module and registers itself through ``add_parser``;
everything here uses only the public API.

Signals: Ctrl-C (SIGINT) prints ``kmeans: interrupted`` and exits 130; SIGTERM raises
:class:`~kmeans.errors.Terminated` in the main thread, so every ``finally`` (and the
temporary-file cleanup of atomic writes) runs, then prints ``kmeans: terminated`` and
exits 143 (128 + the signal number, as a shell reports it). A usage error is one line
on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from kmeans import __version__, registry
from kmeans.errors import Terminated

#: Modules that contribute subcommands: each has ``add_parser(subparsers)``.
SUBCOMMAND_MODULES: tuple[str, ...] = ("kmeans.image.cli", "kmeans.bench.cli", "kmeans.sweep_cli")
#: The command each of them adds: running it imports that module alone (``kmeans sweep``'s
#: module loads the compiled kernels, which ``kmeans quantize`` of a small image never needs).
SUBCOMMANDS: dict[str, str] = {"quantize": "kmeans.image.cli", "bench": "kmeans.bench.cli", "sweep": "kmeans.sweep_cli"}


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


class OneLineParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line: ``prog: error: message (see prog --help)``.

    Subcommand parsers made with ``add_subparsers().add_parser`` are of the same class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``kmeans`` parser; with a ``command`` of :data:`SUBCOMMANDS`, only that subcommand is added."""
    parser = OneLineParser(prog="kmeans", description="K-means clustering on NumPy or Spark.")
    parser.add_argument("--version", action="version", version=f"kmeans {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="registered strategies and whether Spark/Java are usable")
    info.set_defaults(func=cmd_info)
    for module in SUBCOMMAND_MODULES if command not in SUBCOMMANDS else (SUBCOMMANDS[command],):
        importlib.import_module(module).add_parser(sub)
    return parser


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (130 on SIGINT, 143 on SIGTERM).

    Run as the program (``argv=None``) after the compiled kernels were loaded, the process
    ends as soon as the work is done (see :func:`_end_process`).
    """
    code = _run(argv)
    if argv is None:
        _end_process(code)
    return code


def _end_process(code: int) -> None:
    """End the process with ``code`` without the interpreter's teardown, when Numba is loaded.

    Freeing Numba's compiled code and type registries at exit took 0.9 s of a 4 s
    ``kmeans quantize`` of the raccoon (loaded 2-core machine). The exit handlers still
    run and the output is flushed first; with pyspark or coverage loaded (their exit
    work), or if flushing fails, the normal exit follows instead.
    """
    if "numba" not in sys.modules or "pyspark" in sys.modules or "coverage" in sys.modules:
        return
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # a closed pipe, a failing handler: the interpreter's own exit reports it
        return
    os._exit(code)


def _run(argv: Sequence[str] | None) -> int:
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main else None
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(words[0] if words else None)
        args = parser.parse_args(words)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 2
        return int(args.func(args))
    except KeyboardInterrupt:
        print("kmeans: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as exc:
        print("kmeans: terminated", file=sys.stderr)
        return int(exc.code) if isinstance(exc.code, int) else 128 + signal.SIGTERM
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
