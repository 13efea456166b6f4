"""`cellrail landscape`: import registry files, write the trial-start report, print a summary."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellrail.cli.errors import friendly
from cellrail.cli.store import DatabaseOption, engine_for, existing_store
from cellrail.kernel.errors import NotFound
from cellrail.landscape import analytics as a
from cellrail.landscape.model import ClassifiedTrial, Modality
from cellrail.landscape.report import build_report
from cellrail.landscape.report_files import write_report
from cellrail.landscape.services import describe, import_paths
from cellrail.store.uow import SqlUnitOfWork

console = Console(soft_wrap=True)
app = typer.Typer(help="Registry analytics: where cell and gene therapy trials start.", no_args_is_help=True)


@app.command("import")
@friendly
def import_(
    paths: list[Path] = typer.Argument(..., help="ClinicalTrials.gov API v2 JSON, classic CSV or monitor CSV files"),
    database: str | None = DatabaseOption,
    show_rejected: int = typer.Option(20, min=0, help="How many rejected records to list"),
    snapshot: datetime | None = typer.Option(
        None,
        formats=["%Y-%m-%d"],
        help="Day the files were downloaded (YYYY-MM-DD), stored for records whose source gives none (classic CSV)",
    ),
) -> None:
    """Read, classify and store trials (re-importing a trial replaces it); list the records that were rejected."""
    engine = engine_for(database)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("reading records: 0", total=None)
        result = import_paths(
            lambda: SqlUnitOfWork(engine),
            paths,
            progress=lambda seen: progress.update(task, description=f"reading records: {seen:,}"),
            snapshot=snapshot.date() if snapshot is not None else None,
        )
    engine.dispose()
    sources = ", ".join(f"{n:,} {source}" for source, n in sorted(result.by_source.items())) or "none"
    console.print(
        f"[green]ok[/green] {result.imported:,} new and {result.updated:,} updated trials "
        f"({sources}); {result.kept_newer:,} kept newer stored record; {result.rejected_total:,} rejected"
    )
    for line in describe(result.rejected, show_rejected, result.rejected_total):
        console.print(f"[yellow]rejected[/yellow] {escape(line)}", highlight=False)
    if result.stored == 0:
        raise typer.Exit(1)


def _trials(database: str | None) -> list[ClassifiedTrial]:
    engine = existing_store(database)
    try:
        with SqlUnitOfWork(engine, write=False) as uow:
            trials = list(uow.landscape.load_classified_trials())
    finally:
        engine.dispose()
    if not trials:
        raise NotFound("the store holds no trials yet: run `cellrail landscape import PATH...` first")
    return trials


@app.command("report")
@friendly
def report(
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write"),
    database: str | None = DatabaseOption,
    csv_dir: Path | None = typer.Option(None, help="Folder for the CSV tables (default: <out stem>-csv beside it)"),
) -> None:
    """Write the self-contained HTML report and one CSV file per table."""
    trials = _trials(database)
    written = write_report(build_report(trials, datetime.now(UTC)), out, csv_dir)
    console.print(f"[green]ok[/green] report of {len(trials):,} trials: {escape(str(out))}")
    console.print(f"    {len(written) - 1} CSV tables in {escape(str(written[-1].parent))}")


@app.command("summary")
@friendly
def summary(
    database: str | None = DatabaseOption, top: int = typer.Option(10, min=1, help="How many countries to list")
) -> None:
    """Actual starts of cell and gene therapy trials by country (per-country view), ex vivo / in vivo, in the
    terminal; trials not classified as CGT are one count of their own, never inside the ranking."""
    every = _trials(database)
    trials = a.cgt_only(every)
    today = datetime.now(UTC).date()
    facts = a.overview(every, today)
    console.print(
        f"{facts.trials:,} trials stored: {facts.trials - facts.not_cgt:,} cell and gene therapy, "
        f"{facts.not_cgt:,} {a.NOT_CGT} (not counted below)"
    )
    console.print(
        f"CGT trials: {facts.actual:,} actual starts, {facts.estimated:,} estimated, "
        f"{facts.not_stated_kind:,} actual or estimated not stated, "
        f"{facts.no_start_date:,} without a start date, {facts.no_country:,} without a country"
    )
    table = Table("geography", "actual starts", "ex vivo", "in vivo", title="Per-country view, CGT trials")
    ranking = a.ranking(a.starts_by_country(trials, today))
    aggregates = [r for r in ranking if r.aggregate]
    ranked = [*aggregates, *a.top_countries(ranking, top)]
    modality = {(r.geography, r.group): r.trials for r in a.modality_mix(trials, [r.geography for r in ranked])}
    for row in ranked:
        cells = [f"{modality.get((row.geography, m.value), 0):,}" for m in (Modality.EX_VIVO, Modality.IN_VIVO)]
        table.add_row(escape(row.name), f"{row.total:,}", *cells)
    console.print(table)
    console.print(
        "A multinational trial counts once for each of its countries; EU-27 and 'All trials' count it once. "
        "Modality columns count all CGT trials of the geography, whatever their start status."
    )
