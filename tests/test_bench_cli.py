"""``kmeans bench paper`` and ``kmeans bench scaling`` end to end, on grids small enough for CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kmeans import registry
from kmeans.cli import main

pytestmark = pytest.mark.slow  # whole commands end to end; the full suite runs them

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def numpy_paper_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("paper")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                "bench",
                "paper",
                "--only",
                "numpy,paper-numpy",
                "--k",
                "2,3",
                "--iterations",
                "1,2",
                "--downsample",
                "16",
                "--repeats",
                "2",
                "--out",
                str(out),
            ]
        )
    assert code == 0
    return out, buf.getvalue()


def test_bench_paper_writes_report_results_and_figures(numpy_paper_run: tuple[Path, str]) -> None:
    out, _ = numpy_paper_run
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "results.json", "fig5_per_iteration.png", "fig8_ratio_numpy_over_spark.png"} <= names
    assert {
        "fig6-7_runtime_vs_k_numpy.png",
        "fig6-7_runtime_vs_k_paper-numpy.png",
        "fig9_all_implementations.png",
    } <= names
    assert all(_is_png(out / n) for n in names if n.endswith(".png"))
    assert not [n for n in names if n.endswith(".tmp")]


def test_bench_paper_measures_every_cell_of_the_grid(numpy_paper_run: tuple[Path, str]) -> None:
    results = json.loads((numpy_paper_run[0] / "results.json").read_text())["results"]
    for impl in ("numpy", "paper-numpy"):
        cells = {(r["k"], r["iterations"]) for r in results[impl]}
        assert cells == {(2, 1), (2, 2), (3, 1), (3, 2)}
        assert all(1 <= len(r["seconds"]) <= 2 and min(r["seconds"]) > 0 for r in results[impl])


def test_bench_paper_port_reaches_the_same_inertia_as_the_numpy_backend(numpy_paper_run: tuple[Path, str]) -> None:
    results = json.loads((numpy_paper_run[0] / "results.json").read_text())["results"]
    ours = {(r["k"], r["iterations"]): r["inertia"] for r in results["numpy"]}
    for r in results["paper-numpy"]:
        assert r["inertia"] == pytest.approx(ours[(r["k"], r["iterations"])], rel=1e-9)


def test_bench_paper_report_puts_the_papers_numbers_beside_ours(numpy_paper_run: tuple[Path, str]) -> None:
    report = (numpy_paper_run[0] / "report.md").read_text()
    assert "The paper's Table 1" in report
    assert "0.3382" in report  # Table 1, k=2, 1 iteration
    assert "Speed-up over the paper's code run here" in report
    assert "| `paper-numpy` | 4 |" in report  # the quality table compares all four cells


def test_bench_paper_summarizes_on_stdout(numpy_paper_run: tuple[Path, str]) -> None:
    _, stdout = numpy_paper_run
    assert "numpy  k=3" in stdout
    assert "faster than paper-numpy" in stdout
    assert "wrote" in stdout


@pytest.mark.spark
@pytest.mark.slow
def test_bench_paper_quick_runs_every_backend_and_every_port(tmp_path: Path) -> None:
    assert main(["bench", "paper", "--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    ran = set(data["results"])
    assert set(registry.backends) | {"paper-numpy", "paper-rdd", "paper-ml"} <= ran | set(data["unavailable"])
    assert {"numpy", "paper-numpy", "paper-rdd", "paper-ml"} <= ran
    assert not data["unavailable"], data["unavailable"]
    ours = {(r["k"], r["iterations"]): r["inertia"] for r in data["results"]["numpy"]}
    for r in data["results"]["paper-rdd"]:
        assert r["inertia"] == pytest.approx(ours[(r["k"], r["iterations"])], rel=1e-9)
    report = (tmp_path / "report.md").read_text()
    assert "`paper-rdd`: k=2/5, k=10/1, k=10/5 (too slow for the time budget" in report


def test_bench_scaling_writes_tables_slopes_and_plots(tmp_path: Path) -> None:
    code = main(
        [
            "bench",
            "scaling",
            "--rows",
            "2000,8000",
            "--k",
            "2,4",
            "--d",
            "2,3",
            "--engines",
            "numpy,sklearn",
            "--iterations",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "scaling.json").read_text())
    measured = {(p["param"], p["value"], p["engine"]) for p in data["points"]}
    expected = {
        (param, v, e)
        for param, vs in (("rows", (2000, 8000)), ("k", (2, 4)), ("d", (2, 3)))
        for v in vs
        for e in ("numpy", "sklearn")
    }
    assert measured == expected
    assert all(p["peak_bytes"] > 0 and min(p["seconds"]) > 0 for p in data["points"])
    report = (tmp_path / "scaling.md").read_text()
    assert "## Fitted log-log slopes" in report
    assert all(_is_png(tmp_path / f"scaling_{p}.png") for p in ("rows", "k", "d"))


def test_bench_scaling_agrees_with_scikit_learn_on_inertia(tmp_path: Path) -> None:
    # 8-bit "image" rows: scikit-learn then works in float64 (on float32 blobs its inertia is float32).
    assert (
        main(
            [
                "bench",
                "scaling",
                "--rows",
                "3000",
                "--k",
                "3",
                "--d",
                "2",
                "--engines",
                "numpy,sklearn",
                "--iterations",
                "3",
                "--data",
                "image",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    points = json.loads((tmp_path / "scaling.json").read_text())["points"]
    by = {(p["param"], p["value"], p["engine"]): p["inertia"] for p in points}
    for (param, value, engine), inertia in by.items():
        if engine == "numpy":
            assert inertia == pytest.approx(by[(param, value, "sklearn")], rel=1e-6)


@pytest.mark.parametrize("bad", [["--k", "0"], ["--k", "two"], ["--iterations", "-1"]])
def test_bench_paper_rejects_bad_grid_values(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "paper", *bad])
    assert exc.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_run_paper_reports_each_finished_implementation_as_it_goes() -> None:
    from kmeans.bench.paper import PaperGrid, render_markdown, run_paper

    seen: list[list[str]] = []
    reports: list[str] = []

    def on_partial(partial: Any) -> None:
        seen.append(list(partial.measurements))
        reports.append(render_markdown(partial))

    grid = PaperGrid(ks=(2,), iterations=(1,), repeats=1, downsample=16, only=("numpy", "paper-numpy"))
    final = run_paper(grid, on_partial=on_partial)
    assert seen == [["numpy"], ["numpy", "paper-numpy"]]
    assert all("**Partial report**" in r for r in reports)
    assert "**Partial report**" not in render_markdown(final)


def test_run_paper_reports_an_implementation_that_crashes_and_goes_on() -> None:
    from kmeans import register_backend, registry
    from kmeans.bench.paper import PaperGrid, render_markdown, run_paper

    class Crashing:
        name = "crashing"
        calls = 0

        def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> Any:
            return registry.backends["numpy"].dataset(X, sample_weight)

        def fit(self, dataset: Any, spec: Any) -> Any:
            Crashing.calls += 1
            if Crashing.calls > 1:  # the warm-up fit works, the measured ones do not
                raise MemoryError("out of memory")
            return registry.backends["numpy"].fit(dataset, spec)

    register_backend("crashing-test", Crashing(), clobber=True)
    try:
        grid = PaperGrid(ks=(2,), iterations=(1,), repeats=1, downsample=16, only=("crashing-test", "numpy"))
        result = run_paper(grid)
    finally:
        registry.backends._entries.pop("crashing-test")
    assert "failed at k=2, 1 iterations: MemoryError: out of memory" in result.unavailable["crashing-test"]
    assert (2, 1) in result.measurements["numpy"]
    assert "- `crashing-test`: failed at k=2" in render_markdown(result)


def test_bench_minibatch_writes_the_side_by_side_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "minibatch.md"
    args = ["bench", "minibatch", "--rows", "6000", "--k", "8", "--d", "4", "--batch-size", "500", "--out", str(out)]
    assert main(args) == 0
    table = out.read_text()
    assert "6,000 x 4 float32, k=8, batch 500, 12 steps" in table
    for engine in ("| kmeans |", "| sklearn |", "| sklearn-1-thread |"):
        assert engine in table
    assert table.strip() in capsys.readouterr().out


def test_bench_minibatch_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "minibatch", "--rows", "0"])
    assert exc.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err
