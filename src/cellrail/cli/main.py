"""Entry point of the `cellrail` command."""

from __future__ import annotations

import typer

from cellrail.cli import admin, demo, landscape, ledger, network, serve, twin

app = typer.Typer(
    help="CellRail: chain of identity and custody for decentralized cell and gene therapy networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(network.app, name="network")
network.app.command("register")(admin.register)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.slots_app, name="slots")
app.command("verify")(admin.verify)
app.add_typer(ledger.keys_app, name="keys")
app.add_typer(ledger.proof_app, name="proof")
app.command("checkpoint")(ledger.checkpoint)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.add_typer(twin.app, name="twin")
app.add_typer(landscape.app, name="landscape")

if __name__ == "__main__":
    app()
