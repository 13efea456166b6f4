"""YAML documents that remember where each value stood, so every error can name file, line and field.

Pydantic reports a location such as ``('lanes', 3, 'to')``; this module maps it back to the line in the file
and renders it as the dotted field path ``lanes[3].to``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cellrail.kernel.errors import InvalidInput, Problem

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def field_path(loc: Sequence[str | int]) -> str:
    """``('lanes', 3, 'to')`` -> ``lanes[3].to``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class YamlDocument:
    """Parsed YAML data plus the 1-based line of every mapping key and sequence item."""

    data: Any
    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest part of ``loc`` that exists in the file."""
        path = tuple(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        return Problem(field_path(loc), message, self.file, self.line_of(loc))

    def validate(self, model: type[M]) -> M:
        """Validate against a Pydantic model; every error becomes a Problem with file, line and field."""
        try:
            return model.model_validate(self.data)
        except ValidationError as error:
            items = error.errors()
            locs = [tuple(p for p in item["loc"] if isinstance(p, str | int)) for item in items]
            problems = []
            for item, loc in zip(items, locs, strict=True):
                # Pydantic also reports "too short" for a list whose items all failed; the item errors say it all.
                if item["type"] == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs):
                    continue
                problems.append(self.problem(loc, _message(item)))
            raise InvalidInput(problems) from None


def _message(item: Any) -> str:
    if item["type"] == "extra_forbidden":
        return "unknown field (check the spelling against docs/network-schema.json)"
    if item["type"] == "missing":
        return "required field is missing"
    if item["type"] == "value_error" and "error" in item.get("ctx", {}):
        return str(item["ctx"]["error"])  # our own validators' message, without Pydantic's "Value error, " prefix
    return str(item["msg"])


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse YAML text; syntax errors and duplicate keys become Problems naming file and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise InvalidInput([_yaml_problem(error, text, file)]) from None
    except RecursionError:
        raise InvalidInput([Problem("", "the document is nested too deeply", file, None)]) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        raise InvalidInput([Problem("", "the file is empty", file, 1)])
    document = YamlDocument(data=None, file=file)
    duplicates: list[Problem] = []
    try:
        _record_lines(root, (), document.lines, duplicates, file, set())
    except RecursionError:
        raise InvalidInput([Problem("", "the document is nested too deeply", file, None)]) from None
    if duplicates:
        raise InvalidInput(duplicates)
    document.lines[()] = root.start_mark.line + 1
    try:
        document.data = yaml.safe_load(text)
    except yaml.YAMLError as error:  # e.g. a tag the safe loader refuses, such as !!python/object
        raise InvalidInput([_yaml_problem(error, text, file)]) from None
    return document


def _yaml_problem(error: yaml.YAMLError, text: str, file: str) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(part) for part in (error.context, error.problem) if part)
        return Problem("", f"YAML syntax error: {what}", file, line)
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow, e.g. a control character
        line = text.count("\n", 0, error.position) + 1
        return Problem("", f"YAML syntax error: unacceptable character #x{error.character:04x}", file, line)
    return Problem("", f"YAML syntax error: {error}", file, None)


def _record_lines(
    node: yaml.Node, path: Path, lines: dict[Path, int], dups: list[Problem], file: str, seen_nodes: set[int]
) -> None:
    # An alias (*name) reuses a node: walk each node once, so recursive or exponential aliases cannot hang us.
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                dups.append(Problem(field_path(child), "duplicate key", file, key_node.start_mark.line + 1))
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines, dups, file, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, dups, file, seen_nodes)
