"""`cellrail twin ...`: simulate a network many times, compare two networks, calibrate a scenario from the ledger."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellrail.cli.errors import friendly
from cellrail.cli.store import DatabaseOption, existing_store
from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.twin.compare import Comparison, compare
from cellrail.twin.metrics import METRICS
from cellrail.twin.replicate import run_replications
from cellrail.twin.report import Run, write_comparison, write_run
from cellrail.twin.scenario import Scenario, load_scenario
from cellrail.twin.services import calibrate_scenario
from cellrail.twin.statistics import format_value, mean_ci

app = typer.Typer(
    help="The twin: simulate a network's patients many times, compare networks, calibrate from the ledger.",
    no_args_is_help=True,
)
console = Console()
# The figures the terminal shows (the report and CSV files have all of them)
HEADLINE = (
    "patients",
    "treated_share",
    "lost_share",
    "in_progress_share",
    "v2v_median",
    "v2v_p90",
    "d2i_median",
    "utilisation_manufacturing",
    "queue_manufacturing",
    "cost_per_treated",
)
_LABEL = {name: label.strip() for name, label, _ in METRICS}
_UNIT = {name: unit for name, _, unit in METRICS}


class EngineName(StrEnum):
    local = "local"
    ray = "ray"


ReplicationsOption = typer.Option(200, "--replications", "-n", min=1, help="Independent replications to run")
SeedOption = typer.Option(1, "--seed", min=0, help="Seed of the run (the same seed gives the same results)")
EngineOption = typer.Option(EngineName.local, "--engine", help="local: processes on this machine; ray: Ray tasks")
ReportOutOption = typer.Option(None, "--out", help="Folder for the report and CSV files")
WorkersOption = typer.Option(
    None,
    "--workers",
    min=1,
    help=(
        "local: processes; default one per core, but a run estimated under about 4 s stays in this process. "
        "ray: tasks in flight at once; default the cluster's CPU count"
    ),
)


def _scenario(path: Path) -> Scenario:
    return load_scenario(path)


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int, int], None]]:
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(what, total=total)
        yield lambda done, all_: progress.update(task, completed=done, total=all_)


def _warn(runs: list[Run]) -> None:
    for run in runs:
        for warning in run.warnings():
            console.print(f"[yellow]warning[/yellow] {escape(warning)}", soft_wrap=True, highlight=False)


def _default_out(*files: Path) -> Path:
    return Path(".cellrail") / "twin" / "-vs-".join(f.stem for f in files)  # beside the demo, ignored by git


@app.command("run")
@friendly
def run(
    network: Path = typer.Argument(..., help="Network YAML file with demand: and process: sections"),
    replications: int = ReplicationsOption,
    seed: int = SeedOption,
    engine: EngineName = EngineOption,
    workers: int | None = WorkersOption,
    out: Path | None = ReportOutOption,
) -> None:
    """Simulate a network: vein-to-vein time, patients treated and lost, capacity use and cost per patient."""
    scenario = _scenario(network)
    with _progress(replications, f"simulating {network.name}") as tick:
        result = run_replications(scenario, replications, seed, engine.value, workers, tick)
    done = Run(str(network), scenario, result)
    console.print(f"\n[bold]{escape(scenario.network.network.name)}[/bold] — {escape(done.what())}", highlight=False)
    table = Table()
    for column in ("figure", "mean", "95 % CI"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name in HEADLINE:
        mean, low, high, _ = mean_ci(result.values(name))
        unit = _UNIT[name]
        interval = f"{format_value(low, unit)} to {format_value(high, unit)}" if math.isfinite(low) else "–"
        table.add_row(
            _LABEL[name] + (f" ({result.currency})" if unit == "currency" else ""), format_value(mean, unit), interval
        )
    console.print(table)
    console.print(f"Costs: {escape(done.cost_note())}", soft_wrap=True, highlight=False)
    _warn([done])
    page = write_run(done, out or _default_out(network))
    rate = replications / result.elapsed_seconds if result.elapsed_seconds > 0 else float("nan")
    console.print(
        f"{replications} replications in {result.elapsed_seconds:.1f} s ({rate:,.0f}/s, {result.engine}, "
        f"{result.workers} worker{'s' if result.workers > 1 else ''}). Report: {page}",
        soft_wrap=True,
        highlight=False,
    )


def print_comparison(comparison: Comparison, a: Path, b: Path) -> None:
    """The difference table: A, B, B − A with its 95 % paired interval, and whether it is significant."""
    table = Table(title=f"B − A with common random numbers: A = {a.name}, B = {b.name}")
    for column in ("figure", "A", "B", "B − A", "95 % CI", "significant"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name in HEADLINE:
        d = comparison.difference(name)
        unit = _UNIT[name]
        interval = f"{format_value(d.low, unit)} to {format_value(d.high, unit)}" if math.isfinite(d.low) else "–"
        change = f"{d.difference * 100:.1f} pp" if unit == "share" else format_value(d.difference, unit)
        if unit == "share" and math.isfinite(d.low):
            interval = f"{d.low * 100:.1f} to {d.high * 100:.1f} pp"
        table.add_row(
            _LABEL[name],
            format_value(d.mean_a, unit),
            format_value(d.mean_b, unit),
            change if change.startswith("-") or change == "–" else f"+{change}",  # pp: percentage points
            interval,
            "[bold]yes[/bold]" if d.significant else "no",
        )
    console.print(table)
    gains = [d.variance_reduction for d in comparison.differences if math.isfinite(d.variance_reduction)]
    for name in ("v2v_median", "treated_share", "cost_per_treated"):
        console.print(
            f"• {escape(comparison.difference(name).verdict(comparison.a.currency))}", soft_wrap=True, highlight=False
        )
    if gains:
        console.print(
            f"Pairing by seed (common random numbers) made the intervals a median {np.median(gains):.1f}× narrower "
            "than independent runs would give.",
            soft_wrap=True,
            highlight=False,
        )


def run_comparison(
    a: Path, b: Path, replications: int, seed: int, engine: str, workers: int | None, out: Path
) -> tuple[Comparison, Path]:
    """Load, compare, print and write: shared by `twin compare` and `cellrail demo`."""
    scenario_a, scenario_b = _scenario(a), _scenario(b)
    with _progress(2 * replications, f"comparing {a.name} and {b.name}") as tick:
        comparison = compare(scenario_a, scenario_b, replications, seed, engine, workers, tick)  # type: ignore[arg-type]
    run_a, run_b = Run(str(a), scenario_a, comparison.a), Run(str(b), scenario_b, comparison.b)
    print_comparison(comparison, a, b)
    for run in (run_a, run_b):
        console.print(f"Costs: {escape(run.cost_note())}", soft_wrap=True, highlight=False)
    _warn([run_a, run_b])
    return comparison, write_comparison(run_a, run_b, comparison, out)


@app.command("compare")
@friendly
def compare_command(
    a: Path = typer.Argument(..., help="Scenario A (the reference), a network YAML file"),
    b: Path = typer.Argument(..., help="Scenario B (the alternative)"),
    replications: int = ReplicationsOption,
    seed: int = SeedOption,
    engine: EngineName = EngineOption,
    workers: int | None = WorkersOption,
    out: Path | None = ReportOutOption,
) -> None:
    """Compare two networks on the same patients (common random numbers): B − A with 95 % confidence intervals."""
    _, page = run_comparison(a, b, replications, seed, engine.value, workers, out or _default_out(a, b))
    console.print(f"Report: {page}", highlight=False, soft_wrap=True)


@app.command("calibrate")
@friendly
def calibrate(
    network: Path = typer.Argument(..., help="Network YAML file (with demand: and process: sections) to calibrate"),
    out: Path = typer.Option(..., "--out", help="Where to write the calibrated scenario YAML"),
    database: str | None = DatabaseOption,
    min_n: int = typer.Option(
        20, "--min-n", min=1, help="Fewest durations a fit needs to be written (fewer: reported only)"
    ),
) -> None:
    """Fit the process durations to the custody ledger's orders and write them into the scenario's process."""
    try:
        text = network.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput([Problem("", f"not a UTF-8 text file ({error.reason})", str(network))]) from None
    engine = existing_store(database)
    try:
        result = calibrate_scenario(engine, text, str(network), datetime.now(UTC).date(), min_n)
    finally:
        engine.dispose()
    table = Table(title=f"Stage durations from {result.orders} orders in the ledger (days)")
    for column in ("stage", "n", "observed median", "fit", "fitted median", "written to"):
        table.add_column(column, justify="right" if column in ("n", "observed median", "fitted median") else "left")
    for fit in result.fits:
        parameters = ", ".join(f"{k} {v:g}" for k, v in fit.form.items() if k != "dist")
        table.add_row(
            fit.stage,
            str(fit.n),
            f"{fit.observed_median:.2f}",
            f"{fit.dist} ({parameters})",
            f"{fit.fitted_median:.2f}",
            "process." + ".".join(fit.target)
            if fit.target
            else f"(reported only{', ' + fit.withheld if fit.withheld else ''})",
        )
    console.print(table)
    for stage, count in sorted(result.open.items()):
        console.print(
            f"[yellow]warning[/yellow] {count} order{'s are' if count > 1 else ' is'} still in stage {stage} "
            "(right-censored): not in its fit, which may therefore be too short",
            highlight=False,
            soft_wrap=True,
        )
    if not result.fits:
        console.print("[yellow]warning[/yellow] no order in the ledger has a completed stage; nothing was fitted")
    console.print(
        "Note: the process: section is re-written from its values, so comments inside it are replaced by the "
        "calibration note; comments everywhere else in the file are kept.",
        highlight=False,
        soft_wrap=True,
    )
    out.write_text(result.text, encoding="utf-8")
    console.print(f"[green]ok[/green] calibrated scenario written to {out}", highlight=False, soft_wrap=True)
