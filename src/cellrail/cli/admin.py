"""Administration of a store: schema, network registration, users, slots, and ledger verification."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from cellrail.cli.errors import friendly
from cellrail.cli.store import DatabaseOption, engine_for, existing_store
from cellrail.kernel.clock import SystemClock
from cellrail.rail.access_control import SYSTEM, Role
from cellrail.rail.accounts import NewUser, create_user
from cellrail.rail.audit import verify_ledger
from cellrail.rail.services import OpenSlots, open_slots, register_network
from cellrail.store.uow import SqlUnitOfWork

console = Console(soft_wrap=True)
db_app = typer.Typer(help="The store: create or upgrade its schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
slots_app = typer.Typer(help="Bookable capacity.", no_args_is_help=True)


@db_app.command("upgrade")
@friendly
def upgrade(database: str | None = DatabaseOption) -> None:
    """Create the store or bring its schema up to date (safe to run again)."""
    engine_for(database).dispose()
    console.print("[green]ok[/green] schema is up to date")


@friendly
def register(file: Path = typer.Argument(..., help="Network YAML file"), database: str | None = DatabaseOption) -> None:
    """Validate a network file and make it the store's network (recorded in the ledger)."""
    engine = engine_for(database)
    with SqlUnitOfWork(engine) as uow:
        network = register_network(uow, file.read_text(encoding="utf-8"), str(file), SYSTEM, SystemClock())
    console.print(f"[green]ok[/green] registered network '{network.network.id}' ({len(network.nodes)} nodes)")


@users_app.command("add")
@friendly
def add_user(
    username: str = typer.Argument(...),
    node: str = typer.Option(..., help="Node the user belongs to"),
    role: list[Role] = typer.Option(..., "--role", help="Role (repeat for several)"),
    full_name: str = typer.Option(..., help="Name shown in electronic signatures"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    database: str | None = DatabaseOption,
) -> None:
    """Create a user account (passwords are stored as Argon2id hashes)."""
    command = NewUser(username=username, full_name=full_name, node=node, roles=role, password=password)
    with SqlUnitOfWork(engine_for(database)) as uow:
        create_user(uow, command, SYSTEM, SystemClock())
    console.print(f"[green]ok[/green] user '{username}' at '{node}' with roles {', '.join(r.value for r in role)}")


@slots_app.command("open")
@friendly
def open_node_slots(
    node: str = typer.Argument(..., help="Node id"),
    first_day: datetime = typer.Option(
        date.today().isoformat(), "--from", formats=["%Y-%m-%d"], help="First local day"
    ),
    days: int = typer.Option(28, min=1, max=366),
    database: str | None = DatabaseOption,
) -> None:
    """Publish a node's apheresis chairs and manufacturing units as bookable slots."""
    command = OpenSlots(node=node, first_day=first_day.date(), days=days)
    with SqlUnitOfWork(engine_for(database)) as uow:
        added = open_slots(uow, command, SYSTEM, SystemClock())
    console.print(f"[green]ok[/green] {added} new slots at '{node}'")


@friendly
def verify(database: str | None = DatabaseOption) -> None:
    """Verify every site log in four passes: hash chain, Merkle root, checkpoint consistency, signatures."""
    with SqlUnitOfWork(existing_store(database), write=False) as uow:
        report = verify_ledger(uow, SYSTEM)
    summary = f"{report.logs} logs, {report.events} events, {report.checkpoints} signed checkpoints"
    if report.ok:
        console.print(f"[green]ok[/green] custody ledger verified: {summary}")
        return
    for finding in report.findings:
        console.print(f"[red]FAILED[/red] {escape(str(finding))}")
    console.print(f"{len(report.findings)} problems in {summary}")
    raise typer.Exit(1)
