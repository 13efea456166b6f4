"""Trial-start analytics: plain tables over classified trials, with every counting convention stated.

Pure functions (no I/O): the report, the API and the CLI all read the same tables, so a number in the HTML page,
in a CSV file and in an API answer is the same number. Conventions (docs/landscape-analytics.md):

* Per-country view: a multinational trial counts once for EACH of its countries. The EU-27 row counts a trial
  ONCE if any of its countries is a member state (so it is not the sum of the member rows). The "all trials" row
  counts each trial once.
* Lead-country view: each trial counts once, for ``trial.lead_country``.
* A start is ``estimated`` when the registry says so, or when it lies after the snapshot date (it cannot have
  happened yet). Sources that lost the actual/estimated flag (kind UNKNOWN) count a start on or before the
  snapshot as ``actual``; without a snapshot date such a start is ``actual or estimated: not stated`` (a start
  planned when the file was downloaded may lie in the past today). No start date or no country gives explicit
  ``not stated`` rows.
* Growth rates use actual starts only.
* Only cell and gene therapy trials are counted: a trial the rules leave ``unclassified`` (mostly antibodies, drugs
  and registry studies that mention cells or transplants) is left out of the start, growth, sponsor and phase
  tables (``cgt_only``) and shown as its own "not classified as CGT" count (``Overview.not_cgt``, the modality
  tables); it is never silently inside a country ranking.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from cellrail.landscape.countries import EU27, country_name
from cellrail.landscape.model import ClassifiedTrial, DateKind, Modality, Trial

NOT_STATED = "not stated"
ALL = "ALL"
ALL_NAME = "All trials (each once)"
EU27_CODE = "EU27"
EU27_NAME = "EU-27 (each trial once)"
INDUSTRY = "industry"
ACADEMIC = "academic / hospital (IIT share)"
# Registry lead-sponsor classes (ClinicalTrials.gov API v2 AgencyClass). Everything but INDUSTRY is a non-commercial
# sponsor: investigator-initiated trials at universities, hospitals, networks, government and individuals.
SPONSOR_GROUPS: Mapping[str, str] = {
    "INDUSTRY": INDUSTRY,
    "NIH": ACADEMIC,
    "FED": ACADEMIC,
    "OTHER_GOV": ACADEMIC,
    "OTHER": ACADEMIC,
    "NETWORK": ACADEMIC,
    "INDIV": ACADEMIC,
    "UNKNOWN": NOT_STATED,
    "AMBIG": NOT_STATED,  # API v2 AgencyClass AMBIG: the registry could not tell the class
}
FOCUS_GEOGRAPHIES = (ALL, "CN", "US", EU27_CODE)


NOT_CGT = "not classified as CGT"


def is_cgt(item: ClassifiedTrial) -> bool:
    """Classified as ex vivo or in vivo cell and gene therapy (the population every start table counts)."""
    return item.classification.modality != Modality.UNCLASSIFIED


def cgt_only(trials: Iterable[ClassifiedTrial]) -> list[ClassifiedTrial]:
    return [t for t in trials if is_cgt(t)]


class StartStatus(StrEnum):
    ACTUAL = "actual"
    ESTIMATED = "estimated"
    NOT_STATED = "not stated"
    KIND_NOT_STATED = "actual or estimated: not stated"


def start_status(trial: Trial, as_of: date | None = None) -> StartStatus:
    """Actual, estimated (planned, or after the snapshot), not stated (no start date), or KIND_NOT_STATED: a
    source without the actual/estimated flag and without a snapshot date, whose start is not after ``as_of``
    (it may have been planned when the file was downloaded). ``as_of`` stands in for a missing snapshot only to
    tell that a start lies in the future."""
    if trial.start_date is None:
        return StartStatus.NOT_STATED
    if trial.start_kind == DateKind.ESTIMATED:
        return StartStatus.ESTIMATED
    reference = trial.snapshot or as_of
    if reference is not None and trial.start_date > reference:
        return StartStatus.ESTIMATED
    if trial.start_kind == DateKind.UNKNOWN and trial.snapshot is None:
        return StartStatus.KIND_NOT_STATED
    return StartStatus.ACTUAL


def start_year(trial: Trial) -> int | None:
    return trial.start_date.year if trial.start_date is not None else None


def geography_name(code: str) -> str:
    if code == ALL:
        return ALL_NAME
    if code == EU27_CODE:
        return EU27_NAME
    if code == NOT_STATED:
        return "Country not stated"
    return country_name(code)


@dataclass(frozen=True)
class StartsRow:
    """Trials starting in ``year`` with ``status`` in a geography (ISO code, 'EU27', 'ALL' or 'not stated')."""

    geography: str
    name: str
    aggregate: bool
    year: int | None
    status: StartStatus
    trials: int


def _geographies_per_country(trial: Trial) -> list[str]:
    codes = list(trial.countries) or [NOT_STATED]
    if any(c in EU27 for c in trial.countries):
        codes.append(EU27_CODE)
    return [*codes, ALL]


def _geographies_lead(trial: Trial) -> list[str]:
    lead = trial.lead_country or NOT_STATED
    return [lead, EU27_CODE, ALL] if lead in EU27 else [lead, ALL]


def _starts(
    trials: Iterable[ClassifiedTrial], where: Callable[[Trial], list[str]], as_of: date | None
) -> list[StartsRow]:
    counts: Counter[tuple[str, int | None, StartStatus]] = Counter()
    for item in trials:
        year, status = start_year(item.trial), start_status(item.trial, as_of)
        for code in where(item.trial):
            counts[(code, year, status)] += 1
    rows = [
        StartsRow(code, geography_name(code), code in (ALL, EU27_CODE), year, status, n)
        for (code, year, status), n in counts.items()
    ]
    return sorted(rows, key=lambda r: (r.geography, r.year is None, r.year or 0, r.status))


def starts_by_country(trials: Iterable[ClassifiedTrial], as_of: date | None = None) -> list[StartsRow]:
    """Per-country view: once per country of the trial; EU-27 and ALL rows count each trial once."""
    return _starts(trials, _geographies_per_country, as_of)


def starts_by_lead_country(trials: Iterable[ClassifiedTrial], as_of: date | None = None) -> list[StartsRow]:
    """Lead-country view: each trial once, for its lead country ('not stated' when the importer could not tell)."""
    return _starts(trials, _geographies_lead, as_of)


@dataclass(frozen=True)
class RankRow:
    """A geography's starts of one status: the total and the count in each year (columns of a wide table)."""

    geography: str
    name: str
    aggregate: bool
    total: int
    by_year: dict[int | None, int]


def ranking(rows: Iterable[StartsRow], status: StartStatus = StartStatus.ACTUAL) -> list[RankRow]:
    """Geographies ordered by their total of ``status`` starts (largest first), with the yearly counts."""
    names: dict[str, tuple[str, bool]] = {}
    by_year: dict[str, dict[int | None, int]] = {}
    for row in rows:
        if row.status == status:
            names[row.geography] = (row.name, row.aggregate)
            years = by_year.setdefault(row.geography, {})
            years[row.year] = years.get(row.year, 0) + row.trials
    ranked = [RankRow(g, *names[g], sum(years.values()), years) for g, years in by_year.items()]
    return sorted(ranked, key=lambda r: (-r.total, r.geography))


def top_countries(ranked: Sequence[RankRow], n: int) -> list[RankRow]:
    """The ``n`` first single countries of a ranking: no aggregate (ALL, EU-27) and no 'not stated' row."""
    return [r for r in ranked if not r.aggregate and r.geography != NOT_STATED][:n]


def yearly(rows: Iterable[StartsRow], geography: str, status: StartStatus = StartStatus.ACTUAL) -> dict[int, int]:
    """Starts per year of one geography (years with a stated start only)."""
    series: dict[int, int] = {}
    for row in rows:
        if row.geography == geography and row.status == status and row.year is not None:
            series[row.year] = series.get(row.year, 0) + row.trials
    return dict(sorted(series.items()))


@dataclass(frozen=True)
class GrowthRow:
    """Year-on-year change of actual starts: (starts - previous) / previous, None when previous is 0."""

    geography: str
    year: int
    starts: int
    previous: int
    change: float | None


def year_on_year(geography: str, series: Mapping[int, int], first: int, last: int) -> list[GrowthRow]:
    """One row per year in [first, last]; years without starts count as 0."""
    rows = []
    for year in range(first, last + 1):
        starts, previous = series.get(year, 0), series.get(year - 1, 0)
        rows.append(GrowthRow(geography, year, starts, previous, (starts - previous) / previous if previous else None))
    return rows


@dataclass(frozen=True)
class CagrRow:
    """Compound annual growth of actual starts from ``first_year`` to ``last_year``:
    (last_starts / first_starts) ** (1 / (last_year - first_year)) - 1; None when first_starts is 0."""

    geography: str
    first_year: int
    last_year: int
    first_starts: int
    last_starts: int
    cagr: float | None


def cagr(geography: str, series: Mapping[int, int], first: int, last: int) -> CagrRow:
    if last <= first:
        raise ValueError("the CAGR window needs last > first")
    a, b = series.get(first, 0), series.get(last, 0)
    rate = (b / a) ** (1 / (last - first)) - 1 if a else None
    return CagrRow(geography, first, last, a, b, rate)


@dataclass(frozen=True)
class ModalityRow:
    """Trials (each once) starting in ``year`` with ``status``, by modality."""

    year: int | None
    status: StartStatus
    modality: Modality
    trials: int


def modality_split(trials: Iterable[ClassifiedTrial], as_of: date | None = None) -> list[ModalityRow]:
    counts: Counter[tuple[int | None, StartStatus, Modality]] = Counter()
    for item in trials:
        counts[(start_year(item.trial), start_status(item.trial, as_of), item.classification.modality)] += 1
    return sorted(
        (ModalityRow(y, s, m, n) for (y, s, m), n in counts.items()),
        key=lambda r: (r.year is None, r.year or 0, r.status, r.modality),
    )


@dataclass(frozen=True)
class MixRow:
    """A share of trials: ``group`` within ``geography`` (each trial once per geography, as in the country view)."""

    geography: str
    group: str
    trials: int
    share: float


def _mix(
    trials: Sequence[ClassifiedTrial], key: Callable[[ClassifiedTrial], str], geographies: Sequence[str]
) -> list[MixRow]:
    counts: Counter[tuple[str, str]] = Counter()
    for item in trials:
        group = key(item)
        for code in set(_geographies_per_country(item.trial)) & set(geographies):
            counts[(code, group)] += 1
    totals: Counter[str] = Counter()
    for (code, _), n in counts.items():
        totals[code] += n
    order = {g: i for i, g in enumerate(geographies)}
    return sorted(
        (MixRow(code, group, n, n / totals[code]) for (code, group), n in counts.items()),
        key=lambda r: (order[r.geography], -r.trials, r.group),
    )


def sponsor_group(sponsor_class: str | None) -> str:
    """INDUSTRY -> industry; other registry classes -> academic / hospital; none -> not stated."""
    if not sponsor_class or not sponsor_class.strip():
        return NOT_STATED
    return SPONSOR_GROUPS.get(sponsor_class.strip().upper(), f"other ({sponsor_class.strip()})")


def sponsor_mix(trials: Iterable[ClassifiedTrial], geographies: Sequence[str] = FOCUS_GEOGRAPHIES) -> list[MixRow]:
    """Industry vs academic / hospital lead sponsors, per geography (all statuses)."""
    return _mix(list(trials), lambda t: sponsor_group(t.trial.sponsor_class), geographies)


def phase_label(phases: Sequence[str]) -> str:
    """Registry phase enums joined as the registry does ('PHASE1|PHASE2'); none -> not stated."""
    return "|".join(phases) if phases else NOT_STATED


def phase_mix(trials: Iterable[ClassifiedTrial], geographies: Sequence[str] = (ALL,)) -> list[MixRow]:
    return _mix(list(trials), lambda t: phase_label(t.trial.phases), geographies)


def modality_mix(trials: Iterable[ClassifiedTrial], geographies: Sequence[str] = FOCUS_GEOGRAPHIES) -> list[MixRow]:
    return _mix(list(trials), lambda t: t.classification.modality.value, geographies)


@dataclass(frozen=True)
class RuleRow:
    """How many trials each classification rule decided (rule 'upstream:<value>' = the source's own label)."""

    rule: str
    modality: Modality
    trials: int


def rule_counts(trials: Iterable[ClassifiedTrial]) -> list[RuleRow]:
    counts = Counter((t.classification.rule, t.classification.modality) for t in trials)
    return sorted((RuleRow(r, m, n) for (r, m), n in counts.items()), key=lambda r: (-r.trials, r.rule))


@dataclass(frozen=True)
class Overview:
    """Totals that say what the tables cover and what they had to leave as 'not stated'."""

    trials: int  # every stored trial; the counts below are over the CGT trials (trials - not_cgt)
    not_cgt: int
    actual: int
    estimated: int
    not_stated_kind: int  # kind unknown and no snapshot: neither actual nor estimated can be told
    no_start_date: int
    no_country: int
    no_lead_country: int
    multinational: int
    sources: tuple[str, ...]
    snapshots: tuple[date, ...]


def overview(trials: Iterable[ClassifiedTrial], as_of: date | None = None) -> Overview:
    """Totals over the CGT trials, with how many stored trials were not classified as CGT."""
    every = list(trials)
    items = [t.trial for t in every if is_cgt(t)]
    statuses = Counter(start_status(t, as_of) for t in items)
    return Overview(
        trials=len(every),
        not_cgt=len(every) - len(items),
        actual=statuses[StartStatus.ACTUAL],
        estimated=statuses[StartStatus.ESTIMATED],
        not_stated_kind=statuses[StartStatus.KIND_NOT_STATED],
        no_start_date=statuses[StartStatus.NOT_STATED],
        no_country=sum(1 for t in items if not t.countries),
        no_lead_country=sum(1 for t in items if t.lead_country is None),
        multinational=sum(1 for t in items if len(t.countries) > 1),
        sources=tuple(sorted({t.trial.source for t in every})),
        snapshots=tuple(sorted({t.trial.snapshot for t in every if t.trial.snapshot is not None})),
    )
