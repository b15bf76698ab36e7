"""Issue 14: the top-level command line on signals and usage errors (one line, exit 130/143/2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kmeans.cli import main

ROOT = Path(__file__).resolve().parents[1]

#: Runs ``kmeans info`` with ``cmd_info`` replaced by ``body`` (which gets ``out``, a folder).
_RUN = """
import os, signal, sys
import numpy as np
import kmeans.cli
out = sys.argv[1]
def cmd_info(args):
{body}
    print("not reached")
    return 0
kmeans.cli.cmd_info = cmd_info
sys.exit(kmeans.cli.main(["info"]))
"""


def _run(body: str, out: Path) -> subprocess.CompletedProcess[str]:
    script = _RUN.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True)


def test_sigint_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    proc = _run("os.kill(os.getpid(), signal.SIGINT)", tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "kmeans: interrupted\n")


def test_sigterm_while_saving_a_model_cleans_up_and_exits_143(tmp_path: Path) -> None:
    body = """
from tests.hardening_helpers import save_under_sigterm
save_under_sigterm(os.path.join(out, "model.json"))
"""
    proc = _run(body, tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (143, "", "kmeans: terminated\n")
    assert list(tmp_path.iterdir()) == []  # neither the model nor its hidden .tmp file


def test_the_sigterm_handler_is_restored_after_main() -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert main(["info"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    "argv", [["--bogus"], ["info", "--bogus"], ["nonsense"], ["quantize", "--bogus", "x.png"]], ids=str
)
def test_a_usage_error_is_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and "error:" in err and "--help" in err, err
