"""The normalized trial record every importer produces and every analysis reads.

One shape for three source formats (ClinicalTrials.gov API v2 JSON, the classic CSV export, and flattened
monitoring CSVs), so the analytics never care where a record came from. Pure data: no I/O here.
Personal contact data (site contacts' names, phones, e-mails) has no field, so it cannot be stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class DatePrecision(StrEnum):
    """How much of a registry date was given: '2019-03-14', '2019-03' or '2019'."""

    DAY = "day"
    MONTH = "month"
    YEAR = "year"


class DateKind(StrEnum):
    """Whether the registry says the start happened (ACTUAL) or is planned (ESTIMATED); UNKNOWN when not given."""

    ACTUAL = "actual"
    ESTIMATED = "estimated"
    UNKNOWN = "unknown"


class Modality(StrEnum):
    """Ex vivo: cells modified outside the body and given back (CAR-T, TIL, stem cells...).
    In vivo: the genetic medicine is given to the patient (AAV, LNP, in vivo lentiviral, in vivo editing)."""

    EX_VIVO = "ex_vivo"
    IN_VIVO = "in_vivo"
    UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class Intervention:
    """One registry intervention: its type as the registry gives it (BIOLOGICAL, GENETIC, DRUG...) and name."""

    type: str
    name: str


@dataclass(frozen=True)
class Trial:
    """A trial as registered, normalized. Registry enums are kept as the registry spells them
    (phases 'PHASE1'/'EARLY_PHASE1'/'NA'; sponsor class 'INDUSTRY'/'NIH'/'OTHER'...); countries are ISO 3166-1
    alpha-2 codes so that aggregates such as the EU-27 are exact."""

    registry_id: str  # e.g. NCT01234567
    title: str
    phases: tuple[str, ...]
    overall_status: str | None
    start_date: date | None  # first day of the period when the precision is MONTH or YEAR
    start_precision: DatePrecision | None
    start_kind: DateKind
    countries: tuple[str, ...]  # ISO 3166-1 alpha-2, sorted, unique
    lead_country: str | None  # ISO alpha-2; the rule that sets it is documented in docs/landscape.md
    sponsor: str | None
    sponsor_class: str | None
    interventions: tuple[Intervention, ...]
    conditions: tuple[str, ...]
    upstream_product_type: str | None  # a classification given by the source (e.g. 'Autologous'), kept verbatim
    target: str | None  # antigen or gene target when known (e.g. CD19, BCMA)
    source: str  # which importer/format produced it: 'ctgov-v2-json', 'ctgov-classic-csv', 'ptjeong-monitor-csv'
    snapshot: date | None  # when the source data was taken from the registry, when known


@dataclass(frozen=True)
class Classification:
    """The modality of a trial and the rule that decided it, so that every count in a report can be traced.

    ``platform`` names the product family when known (CAR-T, CAR-NK, TCR-T, TIL, stem cell, AAV, LNP, lentiviral
    in vivo, gene editing); ``cell_source`` is 'autologous' or 'allogeneic' for ex vivo products when known.
    ``rule`` is the identifier of the rule in the rule set (or 'upstream:<value>' when the source's own
    classification was kept)."""

    modality: Modality
    platform: str | None
    cell_source: str | None
    rule: str


@dataclass(frozen=True)
class ClassifiedTrial:
    """A stored trial with its classification, as the analytics read them."""

    trial: Trial
    classification: Classification
