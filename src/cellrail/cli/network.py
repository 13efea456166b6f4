"""`cellrail network ...`: check a network file, export its JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from cellrail.cli.errors import friendly
from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.rail.network import load_network, network_json_schema

app = typer.Typer(help="Network registry files: nodes, capabilities and lanes.", no_args_is_help=True)
console = Console()


@app.command("check")
@friendly
def check(file: Path = typer.Argument(..., help="Network YAML file")) -> None:
    """Validate a network file and report every problem with file, line and field."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            [Problem("", f"not a UTF-8 text file (byte {error.start}: {error.reason})", str(file))]
        ) from None
    network = load_network(text, str(file))
    makers = network.manufacturing_nodes()
    console.print(
        f"[green]ok[/green] {file}: network '{network.network.id}' with {len(network.nodes)} nodes "
        f"({len(network.hospitals())} hospitals, {len(makers)} manufacturing nodes) and {len(network.lanes)} lanes",
        soft_wrap=True,
    )


@app.command("schema")
def schema(out: Path | None = typer.Option(None, "--out", help="Write here instead of standard output")) -> None:
    """Print the JSON Schema of network files."""
    text = json.dumps(network_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
