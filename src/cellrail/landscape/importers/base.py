"""What every importer shares: the rejection record, the registry-id check, country codes and the lead-country rule.

An importer never stops at a bad record: it yields a ``Rejected`` that names the file, the line (or index),
the record's id when it can be read and the field at fault, and goes on with the next record.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cellrail.landscape.countries import country_code
from cellrail.landscape.model import DatePrecision, Trial

NCT_ID = re.compile(r"^NCT\d{8}$")


@dataclass(frozen=True)
class Rejected:
    """A record that was skipped: where it stands, its id when readable, and why."""

    source_file: str
    line_or_index: int | None  # CSV: 1-based line where the record starts; JSON: 0-based index in its file
    record_id: str | None
    reason: str

    def __str__(self) -> str:
        where = self.source_file if self.line_or_index is None else f"{self.source_file}:{self.line_or_index}"
        return f"{where}: {self.record_id or '<no id>'}: {self.reason}"


class RecordError(ValueError):
    """One field of one record is wrong; the importer turns it into a ``Rejected``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def registry_id(value: str | None, field: str) -> str:
    """A ClinicalTrials.gov id ('NCT' and eight digits), or a RecordError naming the field."""
    if value is None or not value.strip():
        raise RecordError(field, "required field is missing")
    value = value.strip()
    if not NCT_ID.match(value):
        raise RecordError(field, f"{value!r} is not a ClinicalTrials.gov id (NCT and eight digits)")
    return value


_codes: dict[str, str | None] = {}


def iso_code(name: str, field: str) -> str:
    """The ISO alpha-2 code of a registry country name; an unknown name rejects the record (never guessed)."""
    code = _codes.get(name)
    if code is None:
        code = country_code(name)
        if code is None:
            raise RecordError(field, f"unknown country {name!r} (add it to landscape/data/countries.yaml)")
        _codes[name] = code
    return code


def country_codes(names: Iterable[str], field: str) -> tuple[tuple[str, ...], str | None]:
    """(sorted unique codes, code of the first listed name) of country names in registry order; blanks skipped."""
    first: str | None = None
    seen: set[str] = set()
    for name in names:
        if not name or not name.strip():
            continue
        code = iso_code(name.strip(), field)
        if first is None:
            first = code
        seen.add(code)
    return tuple(sorted(seen)), first


def lead_country(countries: tuple[str, ...], first_listed: str | None) -> str | None:
    """The lead-country rule (docs/landscape.md): the only country when there is one; otherwise the country of the
    first location the registry lists (the sponsor's order, usually the lead site); None when there is none."""
    if len(countries) == 1:
        return countries[0]
    if first_listed is not None and first_listed in countries:
        return first_listed
    return None


def iso_date(text: str, field: str) -> tuple[date, DatePrecision]:
    """'2019-03-14' (day), '2019-03' (month) or '2019' (year) -> the first day of the period and its precision."""
    parts = text.strip().split("-")
    try:
        if len(parts) == 3 and len(parts[0]) == 4 and len(parts[1]) == 2 and len(parts[2]) == 2:
            return date(int(parts[0]), int(parts[1]), int(parts[2])), DatePrecision.DAY
        if len(parts) == 2 and len(parts[0]) == 4 and len(parts[1]) == 2:
            return date(int(parts[0]), int(parts[1]), 1), DatePrecision.MONTH
        if len(parts) == 1 and len(parts[0]) == 4:
            return date(int(parts[0]), 1, 1), DatePrecision.YEAR
    except ValueError:
        pass
    raise RecordError(field, f"{text!r} is not a date such as 2019-03-14, 2019-03 or 2019")


def read_csv_rows(
    path: Path,
    *,
    accepts: Callable[[list[str]], bool],
    required: Iterable[str],
    what: str,
    id_column: str,
    to_trial: Callable[[dict[str, str]], Trial],
) -> Iterator[Trial | Rejected]:
    """The row loop every CSV importer shares: check the header (``accepts``), then one trial or one ``Rejected``
    per row, with the 1-based line where the row starts (a quoted field may span lines) and the row's id."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or not accepts(header):
            missing = [c for c in required if header is None or c not in header]
            yield Rejected(str(path), 1, None, f"not a {what}: missing columns {missing}")
            return
        line = reader.line_num + 1
        for values in reader:
            record_line, line = line, reader.line_num + 1
            row = dict(zip(header, values, strict=False))
            record_id = row.get(id_column)
            if len(values) != len(header):
                yield Rejected(
                    str(path), record_line, record_id, f"the row has {len(values)} fields, the header {len(header)}"
                )
                continue
            try:
                yield to_trial(row)
            except RecordError as error:
                yield Rejected(str(path), record_line, record_id, str(error))
