"""Turn CellRail errors into a clear message and an exit code, never a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from cellrail.kernel.errors import CellRailError, InvalidInput
from cellrail.kernel.yaml_source import field_path

P = ParamSpec("P")
R = TypeVar("R")
err_console = Console(stderr=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as error:
        for problem in error.problems:
            err_console.print(f"[red]error[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except CellRailError as error:
        err_console.print(f"[red]error[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ValidationError as error:
        for item in error.errors(include_url=False):
            location = field_path([p for p in item["loc"] if isinstance(p, str | int)])
            err_console.print(f"[red]error[/red] {escape(location)}: {escape(item['msg'])}", soft_wrap=True)
        raise typer.Exit(2) from None
    except UnicodeDecodeError as error:
        err_console.print(f"[red]error[/red] not a UTF-8 text file ({error.reason})", highlight=False)
        raise typer.Exit(2) from None
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        detail = escape(str(cause).splitlines()[0])
        err_console.print(f"[red]error[/red] the store could not be used: {detail}", soft_wrap=True)
        raise typer.Exit(1) from None
    except OSError as error:
        where = escape(str(error.filename or ""))
        err_console.print(f"[red]error[/red] {where}: {error.strerror}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: CellRail and file errors become messages on stderr."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with reported_errors():
            return command(*args, **kwargs)

    return wrapper
