"""`cellrail landscape import/report/summary`: counts, rejected records with id and reason, no tracebacks."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from cellrail.cli.main import app

DATA = Path(__file__).parent / "data" / "ctgov"
PTJEONG = DATA / "ptjeong-onc-car-t" / "2026-08-22" / "trials.csv"
runner = CliRunner()


def small_monitor_csv(folder: Path, bad_id: bool = True) -> Path:
    """Five real monitor rows, the last one with a broken NCT id."""
    with PTJEONG.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [next(reader) for _ in range(5)]
        columns = reader.fieldnames
    assert columns is not None
    if bad_id:
        rows[-1]["NCTId"] = "NCT-BROKEN"
    path = folder / "trials.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_lists_rejected_records_and_succeeds_when_something_was_stored(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    result = runner.invoke(app, ["landscape", "import", str(small_monitor_csv(tmp_path)), "-d", database])
    assert result.exit_code == 0, result.output
    assert "4 new and 0 updated trials (4 ptjeong-monitor-csv); 0 kept newer stored record; 1 rejected" in result.output
    assert "NCT-BROKEN" in result.output
    assert "NCTId" in result.output  # the reason names the field
    again = runner.invoke(app, ["landscape", "import", str(small_monitor_csv(tmp_path)), "-d", database])
    assert "0 new and 4 updated trials" in again.output


def test_import_with_nothing_stored_fails(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    only_bad = tmp_path / "bad" / "trials.csv"
    only_bad.parent.mkdir()
    with small_monitor_csv(tmp_path).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    with only_bad.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([rows[0], rows[-1]])
    result = runner.invoke(app, ["landscape", "import", str(only_bad), "-d", database])
    assert result.exit_code == 1
    assert "0 new and 0 updated trials (none); 0 kept newer stored record; 1 rejected" in result.output
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n", encoding="utf-8")
    unknown = runner.invoke(app, ["landscape", "import", str(junk), "-d", database])
    assert unknown.exit_code == 2
    assert "not a known registry format" in unknown.output


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["landscape", "import", str(tmp_path / "nope.csv"), "-d", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 2
    assert "nope.csv" in result.output
    assert "no such file" in result.output
    assert "Traceback" not in result.output


def test_report_and_summary_need_imported_trials(tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["landscape", "report", "--out", str(tmp_path / "r.html"), "-d", f"sqlite:///{tmp_path / 'none.db'}"]
    )
    assert missing.exit_code == 1
    assert "no CellRail store" in missing.output
    database = f"sqlite:///{tmp_path / 'store.db'}"
    assert runner.invoke(app, ["db", "upgrade", "-d", database]).exit_code == 0
    empty = runner.invoke(app, ["landscape", "summary", "-d", database])
    assert empty.exit_code == 1
    assert "cellrail landscape import" in empty.output


def test_report_writes_html_and_csv_beside_it_and_summary_ranks_countries(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    assert runner.invoke(app, ["landscape", "import", str(PTJEONG), "-d", database]).exit_code == 0
    result = runner.invoke(
        app, ["landscape", "report", "--out", str(tmp_path / "out" / "landscape.html"), "-d", database]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "landscape.html").stat().st_size > 1_000_000  # plotly.js is inside
    assert (tmp_path / "out" / "landscape-csv" / "starts_by_country.csv").is_file()
    summary = runner.invoke(app, ["landscape", "summary", "-d", database, "--top", "3"])
    assert summary.exit_code == 0, summary.output
    lines = [line for line in summary.output.splitlines() if "China" in line or "United States" in line]
    assert "China" in lines[0]
    assert "2,274 trials stored: 2,188 cell and gene therapy, 86 not classified as CGT" in summary.output
    assert "CGT trials: 1,907 actual starts" in summary.output


def test_snapshot_option_dates_a_classic_csv_so_past_starts_count_as_actual(tmp_path: Path) -> None:
    classic = Path(__file__).parent / "data" / "ctgov" / "jesnyder-allogenic-2021" / "clinicaliPSC.csv"
    undated, dated = f"sqlite:///{tmp_path / 'undated.db'}", f"sqlite:///{tmp_path / 'dated.db'}"
    assert runner.invoke(app, ["landscape", "import", str(classic), "-d", undated]).exit_code == 0
    imported = runner.invoke(app, ["landscape", "import", str(classic), "-d", dated, "--snapshot", "2021-06-01"])
    assert imported.exit_code == 0, imported.output
    without = runner.invoke(app, ["landscape", "summary", "-d", undated])
    with_snapshot = runner.invoke(app, ["landscape", "summary", "-d", dated])
    assert " 0 actual starts" in without.output
    assert "actual or estimated not stated" in without.output
    assert " 0 actual or estimated not stated" in with_snapshot.output
    bad = runner.invoke(app, ["landscape", "import", str(classic), "-d", dated, "--snapshot", "June 2021"])
    assert bad.exit_code != 0
    assert "snapshot" in bad.output
