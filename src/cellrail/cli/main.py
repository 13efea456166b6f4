"""Entry point of the `cellrail` command."""

from __future__ import annotations

import typer

from cellrail.cli import network

app = typer.Typer(
    help="CellRail: chain of identity and custody for decentralized cell and gene therapy networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(network.app, name="network")

if __name__ == "__main__":
    app()
