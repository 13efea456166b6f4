"""The classic ClinicalTrials.gov CSV export (the pre-2023 site's "Download" button, 27 columns).

Its values are prose, not the API's enums, so they are mapped: "Phase 1|Phase 2" -> PHASE1, PHASE2;
"Active, not recruiting" -> ACTIVE_NOT_RECRUITING; "Biological: X" -> (BIOLOGICAL, X); start dates
"February 28, 2018" (day) or "January 2013" (month), with no ACTUAL/ESTIMATED type (kind UNKNOWN).
``Locations`` is ``|``-separated "Facility, City, State, Country" where country names may hold commas.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from cellrail.landscape.countries import country_of_location
from cellrail.landscape.importers.base import (
    RecordError,
    Rejected,
    iso_code,
    lead_country,
    read_csv_rows,
    registry_id,
)
from cellrail.landscape.model import DateKind, DatePrecision, Intervention, Trial

SOURCE = "ctgov-classic-csv"
HEADER_MARK = "NCT Number"
REQUIRED = ("NCT Number", "Title", "Status", "Phases", "Start Date", "Locations")
MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
PHASES = {"phase 1": "PHASE1", "phase 2": "PHASE2", "phase 3": "PHASE3", "phase 4": "PHASE4"}
PHASES |= {"early phase 1": "EARLY_PHASE1", "not applicable": "NA"}
STATUS_SPECIAL = {"unknown status": "UNKNOWN"}
# "Funded Bys" lists the distinct classes of the sponsor and its collaborators in the order of Sponsor/Collaborators
# (lead first): "Memorial Sloan Kettering|Stanford|Juno" -> "Other|Industry". Its first entry is the lead's class.
FUNDERS = {"industry": "INDUSTRY", "nih": "NIH", "other": "OTHER", "u.s. fed": "FED"}


def prose_date(text: str, field: str) -> tuple[date, DatePrecision]:
    """'February 28, 2018' (day) or 'January 2013' (month)."""
    words = text.replace(",", " ").split()
    try:
        month = MONTHS[words[0].casefold()]
        if len(words) == 3:
            return date(int(words[2]), month, int(words[1])), DatePrecision.DAY
        if len(words) == 2:
            return date(int(words[1]), month, 1), DatePrecision.MONTH
    except (KeyError, IndexError, ValueError):
        pass
    raise RecordError(field, f"{text!r} is not a date such as 'February 28, 2018' or 'January 2013'")


def enum_of(prose: str) -> str:
    """'Active, not recruiting' -> 'ACTIVE_NOT_RECRUITING', 'Dietary Supplement' -> 'DIETARY_SUPPLEMENT'."""
    return "_".join(prose.replace(",", " ").upper().split())


def _phases(text: str) -> tuple[str, ...]:
    phases = []
    for part in filter(None, (p.strip() for p in text.split("|"))):
        phase = PHASES.get(part.casefold())
        if phase is None:
            raise RecordError("Phases", f"unknown phase {part!r}")
        phases.append(phase)
    return tuple(phases)


def _interventions(text: str) -> tuple[Intervention, ...]:
    found = []
    for part in filter(None, (p.strip() for p in text.split("|"))):
        kind, colon, name = part.partition(": ")
        found.append(Intervention(enum_of(kind), name.strip()) if colon else Intervention("", part))
    return tuple(found)


def _countries(text: str) -> tuple[tuple[str, ...], str | None]:
    first: str | None = None
    seen: set[str] = set()
    for location in filter(None, (p.strip() for p in text.split("|"))):
        code = country_of_location(location)
        if code is None:
            tail = location.rsplit(",", 1)[-1].strip()
            code = iso_code(tail, "Locations")  # raises, naming the unknown country
        if first is None:
            first = code
        seen.add(code)
    return tuple(sorted(seen)), first


def to_trial(row: dict[str, str]) -> Trial:
    nct = registry_id(row["NCT Number"], "NCT Number")
    title = row["Title"].strip()
    if not title:
        raise RecordError("Title", "required field is missing")
    start_text = row["Start Date"].strip()
    start, precision = prose_date(start_text, "Start Date") if start_text else (None, None)
    countries, first = _countries(row["Locations"])
    status = row["Status"].strip()
    sponsors = [s.strip() for s in row.get("Sponsor/Collaborators", "").split("|") if s.strip()]
    funders = [f.strip().casefold() for f in row.get("Funded Bys", "").split("|") if f.strip()]
    return Trial(
        registry_id=nct,
        title=title,
        phases=_phases(row["Phases"]),
        overall_status=STATUS_SPECIAL.get(status.casefold(), enum_of(status)) if status else None,
        start_date=start,
        start_precision=precision,
        start_kind=DateKind.UNKNOWN,
        countries=countries,
        lead_country=lead_country(countries, first),
        sponsor=sponsors[0] if sponsors else None,  # the export lists the lead sponsor first
        sponsor_class=FUNDERS.get(funders[0]) if funders else None,  # the lead sponsor's class comes first
        interventions=_interventions(row.get("Interventions", "")),
        conditions=tuple(c.strip() for c in row.get("Conditions", "").split("|") if c.strip()),
        upstream_product_type=None,
        target=None,
        source=SOURCE,
        snapshot=None,  # the export does not say when it was downloaded
    )


def read_file(path: Path) -> Iterator[Trial | Rejected]:
    yield from read_csv_rows(
        path,
        accepts=lambda header: all(column in header for column in REQUIRED),
        required=REQUIRED,
        what="classic ClinicalTrials.gov CSV",
        id_column="NCT Number",
        to_trial=to_trial,
    )
