"""`cellrail keys ...`, `cellrail checkpoint`, `cellrail proof ...`: signed checkpoints and proofs for auditors."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from cellrail.cli.errors import friendly
from cellrail.cli.store import DatabaseOption, existing_store
from cellrail.kernel.clock import SystemClock
from cellrail.kernel.errors import InvalidInput, NotFound
from cellrail.rail.access_control import SYSTEM
from cellrail.rail.audit import consistency_proof, inclusion_proof, publish_checkpoints
from cellrail.rail.recording import NETWORK_LOG, origin
from cellrail.settings import Settings
from cellrail.store.keyring import create_key, load_signers
from cellrail.store.uow import SqlUnitOfWork
from cellrail.transparency.verifier import ProofError, check_proof_file

console = Console(soft_wrap=True)
keys_app = typer.Typer(help="Sites' checkpoint signing keys (kept outside the database).", no_args_is_help=True)
proof_app = typer.Typer(help="Inclusion and consistency proofs that auditors can check offline.", no_args_is_help=True)
KeysDirOption = typer.Option(None, "--keys-dir", help="Key directory (default: $CELLRAIL_KEYS_DIR or .cellrail/keys)")


def _keys_dir(given: Path | None) -> Path:
    return given if given is not None else Settings().keys_dir


def _log_name(database: str | None, site: str) -> str:
    """A site id (or 'network') as its log's origin; a full origin passes through."""
    if site.startswith("cellrail/"):
        return site
    with SqlUnitOfWork(existing_store(database), write=False) as uow:
        network = uow.networks.current()
    if network is None:
        raise NotFound("no network is registered in this store")
    if site != NETWORK_LOG and site not in network.node_ids:
        raise InvalidInput.one("site", f"unknown node '{site}'")
    return origin(network.network.id, site)


@keys_app.command("init")
@friendly
def init(
    site: str = typer.Argument(..., help=f"Node id, or '{NETWORK_LOG}' for the network-wide log"),
    database: str | None = DatabaseOption,
    keys_dir: Path | None = KeysDirOption,
) -> None:
    """Create a site's Ed25519 signing key (file mode 0600) and print the public key for the network file."""
    log = _log_name(database, site)
    public = create_key(_keys_dir(keys_dir), log)
    where = "the `network:` header" if site == NETWORK_LOG else f"node '{site}'"
    console.print(f"[green]ok[/green] key for {log} created in {_keys_dir(keys_dir)}")
    console.print(f"Add to {where} in the network file, then register it again:\n  public_key: {public}")


@friendly
def checkpoint(database: str | None = DatabaseOption, keys_dir: Path | None = KeysDirOption) -> None:
    """Sign a checkpoint of every log that grew since its last one (for the keys at hand)."""
    signers = load_signers(_keys_dir(keys_dir))
    if not signers:
        raise NotFound(f"no signing keys in {_keys_dir(keys_dir)}; create them with `cellrail keys init SITE`")
    with SqlUnitOfWork(existing_store(database)) as uow:
        published = publish_checkpoints(uow, signers, SystemClock())
    for cp in published:
        console.print(f"[green]signed[/green] {cp.log} at size {cp.size}")
    if not published:
        console.print("no log grew since its last checkpoint")


def _write(document: dict[str, object], out: Path | None) -> None:
    text = json.dumps(document, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"[green]ok[/green] proof written to {out}")


@proof_app.command("inclusion")
@friendly
def inclusion(
    event: str = typer.Argument(..., help="SITE/SEQ, e.g. hub-east-suzhou/42 (SEQ counts from 1 within the log)"),
    at: int | None = typer.Option(None, "--at", min=1, help="Tree size of the checkpoint (default: the latest)"),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON proof here"),
    database: str | None = DatabaseOption,
) -> None:
    """Prove that one event is in a signed checkpoint of its site's log."""
    site, _, seq = event.rpartition("/")
    if not site or not seq.isdecimal():
        raise InvalidInput.one("event", f"'{event}' is not SITE/SEQ (e.g. hub-east-suzhou/42)")
    log = _log_name(database, site)
    with SqlUnitOfWork(existing_store(database), write=False) as uow:
        document = inclusion_proof(uow, log, int(seq), at, SYSTEM)
    _write(document, out)


@proof_app.command("consistency")
@friendly
def consistency(
    size1: int = typer.Argument(..., min=1),
    size2: int = typer.Argument(..., min=1, help="Must be the size of a signed checkpoint"),
    site: str = typer.Option(..., "--site", help="Node id or 'network'"),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON proof here"),
    database: str | None = DatabaseOption,
) -> None:
    """Prove that a log's tree of SIZE1 events is a prefix of its signed checkpoint of SIZE2."""
    log = _log_name(database, site)
    with SqlUnitOfWork(existing_store(database), write=False) as uow:
        document = consistency_proof(uow, log, size1, size2)
    _write(document, out)


@proof_app.command("check")
@friendly
def check(
    file: Path = typer.Argument(..., help="A proof file from `cellrail proof inclusion|consistency`"),
    key: list[str] | None = typer.Option(None, "--key", help="Trusted verifier key (repeat); default: the file's"),
) -> None:
    """Check a proof file offline: needs neither the database nor the rest of CellRail."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InvalidInput.one("file", f"not a JSON proof file: {error}") from None
    try:
        summary = check_proof_file(document, key or None)
    except ProofError as error:
        console.print(f"[red]INVALID[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    console.print(f"[green]VALID[/green] {escape(summary)}")
