"""Write a built landscape report to disk: the HTML page and one CSV file per table (the report's only I/O)."""

from __future__ import annotations

import csv
from pathlib import Path

from cellrail.landscape.report import LandscapeReport
from cellrail.reports.page import render


def write_report(built: LandscapeReport, out: Path, csv_dir: Path | None = None) -> list[Path]:
    """Write the HTML page to ``out`` and each table to ``csv_dir`` (default: ``<out stem>-csv`` beside it); the
    paths written, the page first."""
    folder = csv_dir if csv_dir is not None else out.with_name(out.stem + "-csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    out.write_text(render(built.report), encoding="utf-8")
    written = [out]
    for table in built.tables.values():
        path = folder / f"{table.name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(table.columns)
            writer.writerows(table.rows)
        written.append(path)
    return written
