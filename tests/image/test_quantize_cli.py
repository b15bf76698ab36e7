"""``kmeans quantize`` run as a real process: outputs, summaries, and every error path.

Every error must be one line on stderr, exit code 2, and leave the folder as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from image_helpers import KNOWN_COLORS, color_set, tiled_image, write_png
from PIL import Image

from kmeans.image import load_image, quantize

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "kmeans", "quantize", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def known_png(tmp_path: Path) -> Path:
    return write_png(tmp_path / "known.png", tiled_image(KNOWN_COLORS, 12, 16))


def test_no_input_quantizes_the_bundled_raccoon_to_8_colors_in_the_current_folder(tmp_path: Path) -> None:
    proc = run(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = load_image(tmp_path / "raccoon-k8.png")
    assert out.shape == (768, 1024, 3)
    assert len(color_set(out)) == 8
    for word in ("134,105 -> 8", "PSNR", "iterations", "inertia", "load", "fit", "map", "write"):
        assert word in proc.stdout
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


def test_k_equal_to_the_number_of_colors_gives_back_the_exact_image(tmp_path: Path, known_png: Path) -> None:
    proc = run(known_png, "-k", "4", "-o", "out.png", "--color-space", "oklab", "--seed", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(load_image(tmp_path / "out.png"), load_image(known_png))


def test_json_prints_one_object_with_the_summary(tmp_path: Path, known_png: Path) -> None:
    proc = run(known_png, "-k", "2", "-o", "out.png", "--json", "--metrics", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["n_clusters"] == 2 and doc["colors_before"] == 4 and doc["colors_after"] == 2
    assert 0 < doc["written"]["ssim"] < 1 and doc["written"]["ciede2000"] > 0
    assert set(doc["timings"]) == {"load", "fit", "map", "write", "total"}
    assert doc["psnr"] > 0 and doc["mse"] > 0 and doc["iterations"] >= 1


def test_quiet_prints_nothing_and_still_writes(tmp_path: Path, known_png: Path) -> None:
    proc = run(known_png, "-k", "2", "-o", "out.png", "--quiet", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert (tmp_path / "out.png").is_file()


def test_a_png_output_is_a_palette_png_by_default(tmp_path: Path, known_png: Path) -> None:
    proc = run(known_png, "-k", "3", "-o", "out.png", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "P"
        assert len(color_set(np.asarray(im.convert("RGB")))) == 3
    written = json.loads(proc.stdout)["written"]
    assert (written["mode"], written["bytes"]) == ("P", (tmp_path / "out.png").stat().st_size)


def test_several_inputs_with_a_shared_palette_go_to_the_output_folder(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", tiled_image(KNOWN_COLORS[:2], seed=1))
    write_png(tmp_path / "b.png", tiled_image(KNOWN_COLORS[2:], seed=2))
    (tmp_path / "out").mkdir()
    proc = run("a.png", "b.png", "-k", "4", "--shared-palette", "--out-dir", "out", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [s["output"] for s in json.loads(proc.stdout)["images"]] == ["out/a-k4.png", "out/b-k4.png"]
    assert np.array_equal(load_image(tmp_path / "out/a-k4.png"), load_image(tmp_path / "a.png"))
    assert np.array_equal(load_image(tmp_path / "out/b-k4.png"), load_image(tmp_path / "b.png"))


def test_dither_writes_the_dithered_image_and_reports_its_error(tmp_path: Path) -> None:
    ramp = np.repeat(np.tile(np.linspace(0, 255, 32).round().astype(np.uint8), (8, 1))[:, :, None], 3, axis=2)
    write_png(tmp_path / "ramp.png", ramp)
    proc = run("ramp.png", "-k", "2", "--dither", "floyd-steinberg", "--dither-strength", "0.5", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["dither"], doc["dither_strength"]) == ("floyd-steinberg", 0.5)
    written = load_image(tmp_path / "ramp-k2.png").astype(float)
    assert doc["written"]["mse"] == pytest.approx(float(np.mean((written - ramp) ** 2)), rel=1e-12)


def test_the_same_command_runs_twice_replacing_its_own_output(tmp_path: Path, known_png: Path) -> None:
    for _ in range(2):
        proc = run(known_png, "-k", "2", "-q", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known-k2.png", "known.png"]
    (tmp_path / "out.png").write_bytes(b"old")
    proc = run(known_png, "-k", "2", "-o", "out.png", "--overwrite", "-q", cwd=tmp_path)  # still accepted
    assert proc.returncode == 0, proc.stderr
    assert load_image(tmp_path / "out.png").shape == (12, 16, 3)


def test_a_jpeg_output_warns_and_reports_the_error_of_the_written_file(tmp_path: Path, known_png: Path) -> None:
    proc = run(known_png, "-k", "2", "-o", "out.jpg", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [warning] = proc.stderr.splitlines()
    assert warning.startswith("kmeans quantize: warning: out.jpg: JPEG is lossy and adds colors back")
    doc = json.loads(proc.stdout)
    written = load_image(tmp_path / "out.jpg").astype(float)
    mse = float(np.mean((written - load_image(known_png).astype(float)) ** 2))
    assert doc["written"]["format"] == "JPEG"
    assert doc["written"]["mse"] == pytest.approx(mse, rel=1e-12)
    assert doc["written"]["mse"] != doc["mse"]
    assert doc["written"]["colors"] == len(color_set(written.astype(np.uint8)))


def test_rgba_input_with_indexed_becomes_a_palette_png_with_transparency(tmp_path: Path) -> None:
    alpha = np.array([0, 128, 255], dtype=np.uint8)[np.arange(48).reshape(6, 8, 1) % 3]
    rgba = np.concatenate([tiled_image(KNOWN_COLORS, 6, 8), alpha], axis=2)
    rgba[rgba[:, :, 3] == 0] = 0
    write_png(tmp_path / "in.png", rgba)
    proc = run("in.png", "-k", "12", "-o", "out.png", "--indexed", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "P" and "transparency" in im.info
    assert np.array_equal(load_image(tmp_path / "out.png"), rgba)  # at most k RGBA values: exact


def _setup_not_an_image(d: Path) -> list[str]:
    (d / "in.png").write_text("not a picture")
    return ["in.png"]


def _setup_truncated(d: Path) -> list[str]:
    write_png(d / "full.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = (d / "full.png").read_bytes()
    (d / "in.png").write_bytes(data[: len(data) // 2])
    return ["in.png"]


def _setup_image(d: Path) -> None:
    write_png(d / "in.png", tiled_image(KNOWN_COLORS, 12, 16))


def _setup_rgba(d: Path) -> None:
    write_png(d / "in.png", np.zeros((4, 4, 4), dtype=np.uint8) + 200)


ERRORS = {
    "missing file": (None, ["missing.png"], "missing.png: no such file"),
    "not an image": (_setup_not_an_image, [], "in.png: not an image"),
    "truncated image": (_setup_truncated, [], "in.png: damaged or truncated image"),
    "decompression bomb": (_setup_image, ["in.png", "--max-pixels", "10"], "decompression bomb"),
    "k below one": (_setup_image, ["in.png", "-k", "0"], "k must be an integer >= 1"),
    "k above 256 with --indexed": (_setup_image, ["in.png", "-k", "300", "--indexed"], "at most 256 colors"),
    "output directory missing": (_setup_image, ["in.png", "-o", "nope/out.png"], "does not exist"),
    "output folder missing": (_setup_image, ["in.png", "--out-dir", "nope"], "does not exist"),
    "output equals input": (_setup_image, ["in.png", "-o", "./in.png", "--overwrite"], "would replace the input"),
    "existing output with --no-clobber": (_setup_image, ["in.png", "-o", "in-k8.png", "-n"], "--no-clobber keeps it"),
    "--truecolor with --indexed": (_setup_image, ["in.png", "--truecolor", "--indexed"], "not allowed with argument"),
    "unknown backend": (_setup_image, ["in.png", "--backend", "nope"], "unknown backend 'nope'"),
    "unknown initializer": (_setup_image, ["in.png", "--init", "nope"], "unknown initializer 'nope'"),
    "unknown output format": (_setup_image, ["in.png", "-o", "out.xyz"], "cannot tell the output format"),
    "alpha into a jpeg": (_setup_rgba, ["in.png", "-o", "out.jpg"], "JPEG cannot store the alpha channel"),
    "dither strength above one": (_setup_image, ["in.png", "--dither-strength", "2"], "from 0 to 1, got 2.0"),
    "-o with several inputs": (_setup_image, ["in.png", "in.png", "-o", "x.png"], "-o/--output names one file"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_gives_one_line_on_stderr_exit_code_2_and_changes_nothing(tmp_path: Path, case: str) -> None:
    setup, args, message = ERRORS[case]
    extra = setup(tmp_path) if setup is not None else None
    if case == "existing output with --no-clobber":
        (tmp_path / "in-k8.png").write_bytes(b"precious")
    before = snapshot(tmp_path)
    proc = run(*(extra or []), *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kmeans quantize: error: ")
    assert message in lines[0]
    assert snapshot(tmp_path) == before  # nothing written, nothing lost, no temporary file left


def test_a_terminal_gets_a_progress_bar_on_stderr(tmp_path: Path, known_png: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "xterm"}
    with subprocess.Popen(
        [sys.executable, "-m", "kmeans", "quantize", str(known_png), "-k", "2", "-o", "out.png"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.stdout.read() if proc.stdout else ""
    os.close(leader)
    assert proc.returncode == 0
    assert "known.png  " in b"".join(chunks).decode(errors="replace")  # the line names the input and its stage
    assert "PSNR" in stdout


def test_info_says_whether_image_support_is_available(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "kmeans", "info"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "image: Pillow" in proc.stdout


def test_a_malformed_option_value_is_also_one_line_and_exit_code_2(tmp_path: Path) -> None:
    proc = run("-k", "many", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "kmeans quantize: error: argument -k/--colors: invalid int value: 'many' (see kmeans quantize --help)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_several_inputs_with_a_bad_one_in_the_middle_write_the_others_and_report_each(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", tiled_image(KNOWN_COLORS, seed=1))
    (tmp_path / "b.png").write_text("not a picture")
    write_png(tmp_path / "c.png", tiled_image(KNOWN_COLORS, seed=3))
    proc = run("a.png", "b.png", "c.png", "-k", "4", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "kmeans quantize: error: b.png: not an image that Pillow can read",
        "kmeans quantize: error: 1 of 3 inputs failed (see above); the others were written",
    ]
    images = json.loads(proc.stdout)["images"]
    assert [(s["input"], s["output"]) for s in images] == [
        ("a.png", "a-k4.png"),
        ("b.png", None),
        ("c.png", "c-k4.png"),
    ]
    assert "not an image" in images[1]["error"]
    for name in ("a", "c"):
        assert np.array_equal(load_image(tmp_path / f"{name}-k4.png"), load_image(tmp_path / f"{name}.png"))
    assert not (tmp_path / "b-k4.png").exists()


def test_with_a_shared_palette_one_bad_input_means_nothing_is_written(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", tiled_image(KNOWN_COLORS, seed=1))
    (tmp_path / "b.png").write_text("not a picture")
    before = snapshot(tmp_path)
    proc = run("a.png", "b.png", "-k", "4", "--shared-palette", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["kmeans quantize: error: b.png: not an image that Pillow can read"]
    assert snapshot(tmp_path) == before


def test_a_file_name_that_is_not_utf8_is_reported_with_a_strict_stdout_encoding(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.png")
    write_png(tmp_path / name, tiled_image(KNOWN_COLORS))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8:strict"}
    proc = subprocess.run(
        [sys.executable, "-m", "kmeans", "quantize", name, "-k", "2"], cwd=tmp_path, env=env, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert proc.stdout.startswith(b"caf\\xe9.png -> caf\\xe9-k2.png  (8x6, k=2")
    assert (tmp_path / os.fsdecode(b"caf\xe9-k2.png")).is_file()


SIGTERM_DURING_WRITE = """
import os, signal, sys
import kmeans.io
fsync = os.fsync
def fsync_then_sigterm(fd):  # the temporary file is complete, the rename not done yet
    fsync(fd)
    os.kill(os.getpid(), signal.SIGTERM)
kmeans.io.os.fsync = fsync_then_sigterm
from kmeans.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_the_image_write_leaves_no_temporary_file_and_exits_143(tmp_path: Path, known_png: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", SIGTERM_DURING_WRITE, "quantize", str(known_png), "-k", "2", "-o", "out.png", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 143
    assert proc.stderr.splitlines() == ["kmeans quantize: terminated by SIGTERM; the output being written was removed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known.png"]


def test_dash_reads_stdin_and_writes_a_png_to_stdout_with_the_summary_on_stderr(
    tmp_path: Path, known_png: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "kmeans", "quantize", "-", "-k", "2", "--json"],
        input=known_png.read_bytes(),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "piped.png").write_bytes(proc.stdout)
    want = quantize(load_image(known_png), n_clusters=2)
    assert np.array_equal(load_image(tmp_path / "piped.png"), want.image)
    doc = json.loads(proc.stderr)
    assert (doc["input"], doc["output"], doc["written"]["bytes"]) == ("-", "-", len(proc.stdout))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known.png", "piped.png"]


def test_the_progress_bar_names_every_stage_and_completes_with_the_summary_s_iterations(known_png: Path) -> None:
    import io

    from rich.console import Console
    from rich.progress import Progress

    from kmeans.image.cli import _Bar

    descriptions: list[str] = []
    with Progress(console=Console(file=io.StringIO()), auto_refresh=False) as progress:
        bar = _Bar(progress, max_iter=300, tol=0.1)
        original_update = progress.update

        def update(task: Any, **kw: Any) -> None:
            original_update(task, **kw)
            if "description" in kw:
                descriptions.append(kw["description"])

        progress.update = update  # type: ignore[method-assign]
        bar.begin("known.png")
        image = load_image(known_png)
        result = quantize(image, n_clusters=2, callbacks=[bar.iteration], on_stage=bar.stage)
        bar.stage("write")
        bar.end()
        [task] = progress.tasks
    stages = [d.split("  ")[1] for d in descriptions]
    assert [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]] == ["fold", "fit", "map", "write", "done"]
    iterations = [d for d in descriptions if "iteration" in d]
    assert len(iterations) == result.n_iter
    assert "center shift" in iterations[-1] and "(stops at <= 0.1)" in iterations[-1]
    assert task.completed == task.total == 2 + result.n_iter + 2


def test_quality_chooses_the_colors_or_exits_99_writing_nothing(tmp_path: Path) -> None:
    y, x = np.mgrid[0:24, 0:32]
    soft = (100 + np.stack([x * 2, y * 2, x + y], axis=2)).astype(np.uint8)
    src = write_png(tmp_path / "soft.png", soft)
    proc = run(src, "--quality", "0-70", "--json", "-o", "out.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["quality"] >= 70 and 1 < summary["n_clusters"] < 256  # -k defaults to 256 with --quality
    assert len(color_set(load_image(tmp_path / "out.png"))) == summary["n_clusters"]
    before = snapshot(tmp_path)
    proc = run(src, "--quality", "95-100", "-k", "4", "-o", "low.png", cwd=tmp_path)
    assert proc.returncode == 99
    assert proc.stderr.count("\n") == 1 and "soft.png: quality" in proc.stderr and "below the minimum 95" in proc.stderr
    assert snapshot(tmp_path) == before
