"""`cellrail twin run / compare / calibrate` through the real CLI: tables, files, exit codes, error messages."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cellrail.cli.main import app
from cellrail.demo.journeys import JourneyPlayer, set_up
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import InvalidInput
from cellrail.rail.network import load_network
from cellrail.store.engine import open_store
from tests.test_twin_report import OVERLOADED

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner(env={"COLUMNS": "240"})


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_run_prints_the_summary_warns_and_writes_the_report(tmp_path: Path) -> None:
    network = _write(tmp_path, "small.yaml", OVERLOADED.replace("UNITS", "1"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["twin", "run", str(network), "-n", "5", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "small.yaml · 5 replications · seed 4 · horizon 240 d (warm-up 60 d, cool-down 90 d)" in result.output
    assert "use assumed rates (defaults.yaml, no published figure)" in result.output
    assert "vein-to-vein median" in result.output
    assert "warning" in result.output
    assert "demand exceeds capacity at hub" in result.output
    assert f"Report: {out / 'report.html'}" in result.output.replace("\n", "")
    with (out / "replications.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 5


def test_compare_prints_the_difference_table(tmp_path: Path) -> None:
    a = _write(tmp_path, "one-unit.yaml", OVERLOADED.replace("UNITS", "1"))
    b = _write(tmp_path, "four-units.yaml", OVERLOADED.replace("UNITS", "4"))
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["twin", "compare", str(a), str(b), "-n", "5", "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "B − A with common random numbers: A = one-unit.yaml, B = four-units.yaml" in result.output
    assert "vein-to-vein median: B is lower, B − A = −" in result.output
    assert (out / "differences.csv").exists()
    assert (out / "report.html").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            OVERLOADED.replace("UNITS", "1").replace("patients_per_year: 60", "patients_per_year: -3"),
            "bad.yaml:30: demand.hospitals.h-a.patients_per_year: Input should be greater",
        ),
        (OVERLOADED.replace("UNITS", "1").replace("h-b: {", "h-zz: {"), "unknown node 'h-zz'"),
        (OVERLOADED.replace("UNITS", "1").replace("  hospitals:", "  hospitals: [oops"), "YAML syntax error"),
    ],
)
def test_bad_scenario_files_give_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    network = _write(tmp_path, "bad.yaml", text)
    result = runner.invoke(app, ["twin", "run", str(network), "-n", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"{network}" in result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_missing_file_and_bad_options(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["twin", "run", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
    assert "nope.yaml" in missing.output
    assert "No such file" in missing.output
    engine = runner.invoke(app, ["twin", "run", str(tmp_path / "nope.yaml"), "--engine", "dask"])
    assert engine.exit_code == 2
    assert "dask" in engine.output
    zero = runner.invoke(app, ["twin", "compare", "a.yaml", "b.yaml", "-n", "0"])
    assert zero.exit_code == 2


def test_calibrate_writes_a_scenario_that_runs(tmp_path: Path) -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    text = (ROOT / "examples" / "regional.yaml").read_text(encoding="utf-8")
    database = tmp_path / "ledger.db"
    engine = open_store(f"sqlite:///{database}")
    clock = ManualClock(start - timedelta(days=1))
    cast = set_up(engine, text, "regional.yaml", clock, (start - timedelta(days=1)).date(), 60)
    network = load_network(text, "regional.yaml")
    JourneyPlayer(engine, network, cast, clock, random.Random(2)).play(start, start + timedelta(weeks=4))
    engine.dispose()
    out = tmp_path / "calibrated.yaml"
    source = ROOT / "examples" / "regional.yaml"
    result = runner.invoke(
        app, ["twin", "calibrate", str(source), "-d", f"sqlite:///{database}", "--out", str(out), "--min-n", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "comments inside it are replaced" in result.output
    assert "qc_release" in result.output
    assert "process.qc_release" in result.output
    assert f"calibrated scenario written to {out}" in result.output.replace("\n", "")
    assert "# calibrated_from: sqlite:///" in out.read_text(encoding="utf-8")
    ran = runner.invoke(app, ["twin", "run", str(out), "-n", "2", "--out", str(tmp_path / "run")])
    assert ran.exit_code == 0, ran.output
    nowhere = runner.invoke(app, ["twin", "calibrate", str(source), "-d", f"sqlite:///{tmp_path / 'x.db'}", "--out",
                                  str(tmp_path / "x.yaml")])  # fmt: skip
    assert nowhere.exit_code == 1
    assert "no CellRail store" in nowhere.output


def test_demo_finds_the_example_network_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the default examples/regional.yaml was relative to the working directory."""
    from cellrail.cli.demo import example_network

    monkeypatch.chdir(tmp_path)
    found = example_network()
    assert found.is_file()
    assert found.resolve() == (ROOT / "examples" / "regional.yaml").resolve()
    assert (found.parent / "centralized.yaml").is_file()  # the twin headline's A
    with pytest.raises(InvalidInput, match=r"examples/nowhere.yaml not found .*pass --network FILE"):
        example_network("nowhere.yaml")
    missing = runner.invoke(app, ["demo", "--network", str(tmp_path / "x.yaml"), "--database", str(tmp_path / "d.db")])
    assert missing.exit_code != 0
    assert "--network: no file at" in missing.output
