"""Country names as registries spell them, mapped to ISO 3166-1 alpha-2, and the EU-27.

Counting by code, not by name, is what makes "Czech Republic" and "Czechia" (or "Turkey" and "Türkiye") one
country and the EU-27 an exact set. The table is package data (data/countries.yaml) with its sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.kernel.yaml_source import parse_yaml

DATA_FILE = "data/countries.yaml"
_CODE = re.compile(r"^[A-Z]{2}$")


class _EuMembers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    members: list[str] = Field(min_length=27, max_length=27)


class _CountryTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    eu27: _EuMembers
    countries: dict[str, list[str]]

    @field_validator("countries")
    @classmethod
    def _codes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for code, names in value.items():
            if not _CODE.match(code):
                raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 code")
            if not names:
                raise ValueError(f"{code} has no name")
        return value


@dataclass(frozen=True)
class CountryTable:
    names: dict[str, str]  # code -> the name CellRail prints
    codes: dict[str, str]  # folded spelling -> code
    eu27: frozenset[str]
    source: str
    eu27_source: str


def fold(name: str) -> str:
    """The key a spelling is matched by: case and surrounding/double spaces do not matter."""
    return " ".join(name.split()).casefold()


def load_country_table(text: str, file: str) -> CountryTable:
    """Parse and check the table; a spelling given to two codes or an EU member without a name is an error."""
    document = parse_yaml(text, file)
    table = document.validate(_CountryTable)
    codes: dict[str, str] = {}
    problems: list[Problem] = []
    for code, spellings in table.countries.items():
        for index, spelling in enumerate(spellings):
            key = fold(spelling)
            if key in codes and codes[key] != code:
                problems.append(
                    document.problem(("countries", code, index), f"{spelling!r} is already a name of {codes[key]}")
                )
            codes[key] = code
    for index, member in enumerate(table.eu27.members):
        if member not in table.countries:
            problems.append(document.problem(("eu27", "members", index), f"{member} is not in the country list"))
    if problems:
        raise InvalidInput(problems)
    return CountryTable(
        names={code: spellings[0] for code, spellings in table.countries.items()},
        codes=codes,
        eu27=frozenset(table.eu27.members),
        source=table.source,
        eu27_source=table.eu27.source,
    )


TABLE = load_country_table(
    resources.files("cellrail.landscape").joinpath(DATA_FILE).read_text(encoding="utf-8"),
    f"cellrail/landscape/{DATA_FILE}",
)
EU27: frozenset[str] = TABLE.eu27
EU27_SOURCE: str = TABLE.eu27_source


def country_code(name: str) -> str | None:
    """ISO alpha-2 of a country name as a registry spells it; None if unknown (codes are not names: "NA" is
    not taken for Namibia)."""
    return TABLE.codes.get(fold(name))


def country_name(code: str) -> str:
    """The display name of an ISO alpha-2 code ('KR' -> 'Korea, Republic of'); an unknown code is returned as is."""
    return TABLE.names.get(code.upper(), code)


def country_of_location(location: str, *, max_parts: int = 4) -> str | None:
    """The country code at the end of a "Facility, City, State, Country" text.

    Country names may contain commas ("Korea, Republic of"), so the longest comma-separated tail that is a known
    name wins; None when no tail is a country."""
    parts = [part.strip() for part in location.split(",")]
    best: str | None = None
    for size in range(1, min(max_parts, len(parts)) + 1):
        code = TABLE.codes.get(fold(", ".join(parts[-size:])))
        if code is not None:
            best = code
    return best
