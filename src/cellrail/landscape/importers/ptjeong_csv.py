"""The flattened trial CSV of the ONC CAR-T Trials Monitor (ptjeong/ONC-CAR-T-Trials-Monitor snapshots).

Its ``StartDate`` went through ``pandas.to_datetime``: a registry month-only date "2015-09" became "2015-09-01",
a year-only "2015" became "2015-01-01", and the ACTUAL/ESTIMATED type was dropped. What is certain is kept and no
more: a date on the 1st of January has YEAR precision, on the 1st of another month MONTH precision, any other day
DAY precision (a genuine start on the 1st is under-stated, never over-stated), and the kind is always UNKNOWN.

``ProductType`` is the upstream author's classification (heuristic and LLM-assisted), kept verbatim as
``upstream_product_type``; ``TargetCategory`` likewise becomes ``target`` unless it says the target is unknown.
The sibling ``sites.csv``, when present, gives only the order of the sites' countries (for the lead-country
rule); no facility, contact or address field of it is read into a record.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from cellrail.landscape.importers.base import (
    RecordError,
    Rejected,
    country_codes,
    iso_code,
    iso_date,
    lead_country,
    read_csv_rows,
    registry_id,
)
from cellrail.landscape.model import DateKind, DatePrecision, Intervention, Trial

SOURCE = "ptjeong-monitor-csv"
REQUIRED = ("NCTId", "BriefTitle", "OverallStatus", "Phase", "StartDate", "Countries", "StartYear")
SITES_REQUIRED = ("NCTId", "Facility", "Country")
NO_PHASE = {"", "unknown"}
UNKNOWN_TARGETS = {"other_or_unknown", "car-t_unspecified", "unknown", ""}


def is_trials_header(header: list[str]) -> bool:
    return all(column in header for column in REQUIRED)


def is_sites_header(header: list[str]) -> bool:
    return all(column in header for column in SITES_REQUIRED) and "Countries" not in header


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split("|") if part.strip()]


def pandas_date(text: str, year_text: str) -> tuple[date | None, DatePrecision | None]:
    """The honest reading of a pandas-rewritten start date (see the module note); StartYear alone gives a year."""
    text = text.strip()
    if text:
        start, precision = iso_date(text[:10], "StartDate")
        if precision is DatePrecision.DAY and start.day == 1:
            precision = DatePrecision.YEAR if start.month == 1 else DatePrecision.MONTH
        return start, precision
    year_text = year_text.strip()
    if not year_text:
        return None, None
    try:
        year = float(year_text)  # written by pandas as "2019.0"
        if year != int(year):
            raise ValueError
        return date(int(year), 1, 1), DatePrecision.YEAR
    except ValueError:
        raise RecordError("StartYear", f"{year_text!r} is not a year") from None


def first_site_countries(sites: Path) -> dict[str, str]:
    """The country name of each trial's first listed site in ``sites.csv`` (reads only NCTId and Country)."""
    first: dict[str, str] = {}
    with sites.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            nct, country = row.get("NCTId") or "", (row.get("Country") or "").strip()
            if nct and country and nct not in first:
                first[nct] = country
    return first


def to_trial(row: dict[str, str], first_site: dict[str, str]) -> Trial:
    nct = registry_id(row["NCTId"], "NCTId")
    title = row["BriefTitle"].strip()
    if not title:
        raise RecordError("BriefTitle", "required field is missing")
    start, precision = pandas_date(row["StartDate"], row["StartYear"])
    countries, _ = country_codes(_split(row["Countries"]), "Countries")  # upstream sorts them by name
    site_country = first_site.get(nct)
    first = iso_code(site_country, "sites.csv Country") if site_country else None
    phases = tuple(p for p in _split(row["Phase"]) if p.casefold() not in NO_PHASE)
    target = (row.get("TargetCategory") or "").strip()
    snapshot_text = (row.get("SnapshotDate") or "").strip()
    return Trial(
        registry_id=nct,
        title=title,
        phases=phases,
        overall_status=row["OverallStatus"].strip() or None,
        start_date=start,
        start_precision=precision,
        start_kind=DateKind.UNKNOWN,
        countries=countries,
        lead_country=lead_country(countries, first),
        sponsor=(row.get("LeadSponsor") or "").strip() or None,
        sponsor_class=(row.get("LeadSponsorClass") or "").strip() or None,
        interventions=tuple(Intervention("", name) for name in _split(row.get("Interventions") or "")),
        conditions=tuple(_split(row.get("Conditions") or "")),
        upstream_product_type=(row.get("ProductType") or "").strip() or None,
        target=None if target.casefold() in UNKNOWN_TARGETS else target,
        source=SOURCE,
        snapshot=iso_date(snapshot_text, "SnapshotDate")[0] if snapshot_text else None,
    )


def read_file(path: Path) -> Iterator[Trial | Rejected]:
    """The trials of a monitor ``trials.csv``; a ``sites.csv`` beside it supplies the first site's country."""
    sites = path.with_name("sites.csv")
    first_site = first_site_countries(sites) if sites.is_file() and sites != path else {}
    yield from read_csv_rows(
        path,
        accepts=is_trials_header,
        required=REQUIRED,
        what="monitor trials CSV",
        id_column="NCTId",
        to_trial=lambda row: to_trial(row, first_site),
    )
