"""`cellrail demo`: build a demo network database from synthetic journeys, summarise it, and serve the API."""

from __future__ import annotations

import random
import shutil
import statistics
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellrail.cli.errors import friendly
from cellrail.cli.serve import HostOption, PortOption, serve_engine
from cellrail.cli.twin import run_comparison
from cellrail.demo.journeys import DEMO_PASSWORD, JourneyPlayer, PlayStats, demo_window, set_up, with_site_keys
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import Conflict, InvalidInput
from cellrail.rail.audit import publish_checkpoints, verify_ledger
from cellrail.rail.network import Network, load_network
from cellrail.rail.orders import OrderState
from cellrail.rail.services import NetworkStatus, network_status
from cellrail.store.engine import open_store
from cellrail.store.keyring import load_signers
from cellrail.store.uow import SqlUnitOfWork

console = Console()
_REPO = Path(__file__).resolve().parents[3]  # src/cellrail/cli/demo.py -> the checkout (examples/ is not packaged)


def example_network(name: str = "regional.yaml") -> Path:
    """``examples/<name>`` from the working directory if it is there, else from this checkout, so ``cellrail demo``
    works from any directory; a clear error when neither has it (e.g. an installed wheel: pass --network)."""
    candidates = [Path("examples") / name, _REPO / "examples" / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise InvalidInput.one("--network", f"examples/{name} not found (looked in {looked}); pass --network FILE")


@friendly
def demo(
    network_file: Path | None = typer.Option(
        None, "--network", help="Network YAML file (default: examples/regional.yaml of this checkout)"
    ),
    database: Path = typer.Option(Path(".cellrail/demo.db"), help="SQLite file to (re)build"),
    weeks: int = typer.Option(8, min=1, max=52, help="Weeks of patient journeys to play"),
    seed: int = typer.Option(1, help="Random seed (the same seed gives the same journeys)"),
    replace: bool = typer.Option(False, help="Rebuild the database file if it already exists"),
    serve: bool = typer.Option(True, help="Serve the API when done"),
    host: str = HostOption,
    port: int = PortOption,
) -> None:
    """Play several weeks of synthetic patient journeys through the rail, print a summary, serve the API."""
    network_file = network_file or example_network()
    if not network_file.is_file():
        raise InvalidInput.one("--network", f"no file at {network_file}")
    load_network(network_file.read_text(encoding="utf-8"), str(network_file))  # report problems before deleting
    if database.exists() and not replace:
        raise Conflict(f"{database} already exists; pass --replace to rebuild it (its data will be deleted)")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    keys_dir = Path(f"{database}.keys")
    shutil.rmtree(keys_dir, ignore_errors=True)
    text = with_site_keys(network_file.read_text(encoding="utf-8"), keys_dir)
    network = load_network(text, str(network_file))
    signers = load_signers(keys_dir)
    engine = open_store(f"sqlite:///{database}")
    start, end = demo_window(weeks)
    clock = ManualClock(start - timedelta(days=1))
    cast = set_up(engine, text, str(network_file), clock, (start - timedelta(days=1)).date(), weeks * 7 + 90)
    player = JourneyPlayer(engine, network, cast, clock, random.Random(seed), signers=signers)
    columns = (TextColumn("playing {task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{weeks} weeks of journeys", total=1.0)
        stats = player.play(start, end, lambda done: progress.update(task, completed=done))
    with SqlUnitOfWork(engine) as uow:
        publish_checkpoints(uow, signers, clock)
    with SqlUnitOfWork(engine, write=False) as uow:
        status = network_status(uow, cast.auditor)
        report = verify_ledger(uow, cast.auditor)
    _print_summary(network, database, weeks, stats, status)
    summary = f"{report.logs} site logs, {report.events} events, {report.checkpoints} signed checkpoints"
    if report.ok:
        console.print(
            f"[green]Custody ledger verified[/green] (chain, Merkle root, consistency, signatures): {summary}"
        )
    else:
        for finding in report.findings:
            console.print(f"[red]FAILED[/red] {finding}")
        raise typer.Exit(1)
    console.print(f"Users: op-<node>, qp-<node>, courier, auditor, admin; demo password '{DEMO_PASSWORD}'")
    _twin_headline(network_file.parent, database.parent / "twin", seed)
    if serve:
        serve_engine(engine, host, port)


TWIN_REPLICATIONS = 40  # a few dozen: a few seconds, and intervals already narrow thanks to common random numbers


def _twin_headline(examples: Path, out: Path, seed: int) -> None:
    """The twin's headline: the centralized and the regional example networks on the same simulated patients."""
    a, b = examples / "centralized.yaml", examples / "regional.yaml"
    if not (a.is_file() and b.is_file()):
        console.print(f"(twin comparison skipped: {a} and {b} are not both there)", highlight=False)
        return
    console.print("\n[bold]The twin[/bold]: two years of referrals to both networks, same patients in each")
    _, page = run_comparison(a, b, TWIN_REPLICATIONS, seed, "local", None, out)
    console.print(f"Twin report: {page}  (more: cellrail twin compare {a} {b})", highlight=False, soft_wrap=True)


def _print_summary(network: Network, database: Path, weeks: int, stats: PlayStats, status: NetworkStatus) -> None:
    console.print(
        f"\n[bold]{network.network.name}[/bold] — {weeks} weeks of synthetic journeys in {database}\n"
        f"{stats.enrolled} patients enrolled, {stats.booked} booked, {stats.steps} lifecycle steps, "
        f"{stats.custody_scans} courier checkpoints; {stats.mix_ups_stopped} label mix-ups stopped at hand-off, "
        f"{stats.rejected} products rejected by QA, {stats.lost_waiting_for_slot} lost waiting for a slot, "
        f"{stats.withdrawn} withdrawn."
    )
    stages = Table(title="Orders by stage")
    stages.add_column("stage")
    stages.add_column("orders", justify="right")
    for state in OrderState:
        if status.orders_by_state.get(state):
            stages.add_row(state.value.replace("_", " "), str(status.orders_by_state[state]))
    console.print(stages)
    v2v = Table(title="Vein-to-vein time of infused patients (collection → infusion), by treatment site")
    for name in ("treatment site", "infused", "median days", "range days"):
        v2v.add_column(name, justify="left" if name == "treatment site" else "right")
    for node in network.hospitals():
        days = sorted(t.total_seconds() / 86400 for t in status.vein_to_vein_by_site.get(node.id, []))
        if days:
            v2v.add_row(node.name, str(len(days)), f"{statistics.median(days):.1f}", f"{days[0]:.1f}–{days[-1]:.1f}")
        else:
            v2v.add_row(node.name, "0", "–", "–")
    console.print(v2v)
