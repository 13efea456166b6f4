"""The landscape report: one offline HTML page of trial-start charts and tables, and one CSV per table beside it.

Every number on the page comes from ``cellrail.landscape.analytics``; the CSV files hold the full tables (the page
shows the top rows), so an analyst can check any figure in a spreadsheet. Each chart carries its data source and
snapshot, and each section its counting convention and caveats. Building is pure (no I/O): the files are
written by ``cellrail.landscape.report_files``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

import plotly.graph_objects as go

from cellrail.landscape import analytics as a
from cellrail.landscape.analytics import ALL, EU27_CODE, StartStatus
from cellrail.landscape.model import ClassifiedTrial, Modality
from cellrail.reports.page import Report, Section, Table

FOCUS = (("CN", "China"), ("US", "United States"), (EU27_CODE, "EU-27"), (ALL, "All trials"))
UPSTREAMS = {
    "ptjeong-monitor-csv": "ptjeong/ONC-CAR-T-Trials-Monitor",
    "ctgov-classic-csv": "the ClinicalTrials.gov classic CSV export",
    "ctgov-v2-json": "the ClinicalTrials.gov API v2",
}
SOURCE_CAVEATS = {
    "ptjeong-monitor-csv": (
        "ptjeong's ProductType and SponsorType are the upstream author's heuristic and LLM-assisted classifications, "
        "not registry fields; its start dates went through pandas, so month-only dates read as the 1st of the month "
        "and the actual/estimated flag was lost (a start after the snapshot date is counted as estimated)."
    ),
    "ctgov-classic-csv": (
        "The classic CSV export gives prose dates without the actual/estimated flag and no snapshot date: unless it "
        "was imported with --snapshot, its past starts are 'actual or estimated: not stated' (a start planned at "
        "download time may lie in the past now) and starts after the report date are counted as estimated."
    ),
}
GENERAL_CAVEATS = (
    "Per-country view: a multinational trial counts once for each of its countries, so country rows add up to "
    "more than the number of trials; the EU-27 and 'All trials' rows count each trial once.",
    "Registry lag: trials are often registered months after they start, so the most recent years are incomplete "
    "and growth into them is understated.",
)
PLOT_HEIGHT = 440


@dataclass(frozen=True)
class CsvTable:
    """A full table as written to ``<name>.csv``: column names and rows of plain values."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 6)
    return value


def csv_table(name: str, items: Sequence[Any]) -> CsvTable:
    """Rows of dataclass instances as a CSV table (enums as their value, None as empty)."""
    if not items:
        return CsvTable(name, (), [])
    columns = tuple(f.name for f in dataclasses.fields(items[0]))
    return CsvTable(name, columns, [tuple(_plain(getattr(i, c)) for c in columns) for i in items])


def rank_table(name: str, ranked: Sequence[a.RankRow], years: Sequence[int]) -> CsvTable:
    columns = ("geography", "name", "aggregate", "total", *(str(y) for y in years), a.NOT_STATED)
    rows = [
        (r.geography, r.name, r.aggregate, r.total, *(r.by_year.get(y, 0) for y in years), r.by_year.get(None, 0))
        for r in ranked
    ]
    return CsvTable(name, columns, rows)


def source_line(trials: Sequence[ClassifiedTrial]) -> str:
    """'Source: ClinicalTrials.gov (NLM), via <upstream>, snapshot <date>' for each source in the data."""
    parts = []
    for source in sorted({t.trial.source for t in trials}):
        snaps = sorted({t.trial.snapshot for t in trials if t.trial.source == source and t.trial.snapshot})
        when = ", ".join(s.isoformat() for s in snaps) or "date not stated"
        parts.append(f"via {UPSTREAMS.get(source, source)}, snapshot {when}")
    return "Source: ClinicalTrials.gov (NLM), " + "; ".join(parts or ["no trials"])


def _figure(title: str, source: str, traces: Iterable[Any], barmode: str | None = None, y: str = "trials") -> Any:
    figure = go.Figure(list(traces))
    figure.update_layout(
        title=title,
        height=PLOT_HEIGHT,
        barmode=barmode,
        yaxis_title=y,
        margin={"b": 110},
        annotations=[
            {
                "text": source,
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": -0.28,
                "showarrow": False,
                "font": {"size": 10},
                "xanchor": "left",
            }
        ],
    )
    return figure


PERCENT_COLUMNS = {"share", "change", "cagr"}


def _shown(column: str, value: Any) -> Any:
    """Years without a thousands separator, rates as percentages (the CSV keeps the plain numbers)."""
    if column.endswith("year") or column.isdigit():
        return str(value)
    if column in PERCENT_COLUMNS and isinstance(value, float):
        return f"{value * 100:.1f} %"
    return value


def _html(table: CsvTable, limit: int | None = None, caption: str = "") -> Table:
    rows = [tuple(_shown(c, v) for c, v in zip(table.columns, r, strict=True)) for r in table.rows[:limit]]
    note = f"{caption} Full table: {table.name}.csv" if caption else f"Full table: {table.name}.csv"
    if limit is not None and len(table.rows) > limit:
        note += f" (top {limit} of {len(table.rows)} rows shown)"
    return Table(columns=table.columns, rows=rows, caption=note)


@dataclass(frozen=True)
class LandscapeReport:
    """The page and its full tables, built in memory; ``cellrail.landscape.report_files`` writes them."""

    report: Report
    tables: dict[str, CsvTable]


def _yearly_lines(title: str, source: str, rows: Sequence[a.StartsRow]) -> Any:
    """One line of actual starts per year for each focus geography (China, United States, EU-27, all trials)."""
    series = [(name, a.yearly(rows, code)) for code, name in FOCUS]
    return _figure(
        title, source, [go.Scatter(x=list(s), y=list(s.values()), mode="lines+markers", name=n) for n, s in series]
    )


def _years(rows: Iterable[a.StartsRow]) -> list[int]:
    return sorted({r.year for r in rows if r.year is not None})


def _window(trials: Sequence[ClassifiedTrial], as_of: date) -> tuple[int, int]:
    """The CAGR window: the five years up to the last complete year before the (latest) snapshot."""
    snaps = [t.trial.snapshot for t in trials if t.trial.snapshot is not None]
    last = (max(snaps) if snaps else as_of).year - 1
    return last - 5, last


def build_report(
    trials: Sequence[ClassifiedTrial], generated_at: datetime, as_of: date | None = None
) -> LandscapeReport:
    """All sections and tables for ``trials``; ``as_of`` (default: the generation date) stands in for a missing
    snapshot when deciding whether an undated-kind start is actual or estimated."""
    as_of = as_of or generated_at.date()
    every = trials
    trials = a.cgt_only(every)  # the start, growth, sponsor and phase tables count CGT trials only
    source = source_line(every)
    caveats = [SOURCE_CAVEATS[s] for s in sorted({t.trial.source for t in every}) if s in SOURCE_CAVEATS]
    notes = [source, *caveats, *GENERAL_CAVEATS]
    summary = a.overview(every, as_of)
    by_country = a.starts_by_country(trials, as_of)
    by_lead = a.starts_by_lead_country(trials, as_of)
    years = _years(by_country)
    tables: dict[str, CsvTable] = {}

    def keep(table: CsvTable) -> CsvTable:
        tables[table.name] = table
        return table

    overview = keep(
        CsvTable(
            "overview",
            ("measure", "trials"),
            [
                ("trials stored", summary.trials),
                (f"{a.NOT_CGT} (left out of every table below but the modality tables)", summary.not_cgt),
                ("cell and gene therapy trials (counted below)", summary.trials - summary.not_cgt),
                ("actual start (on or before the snapshot)", summary.actual),
                ("estimated start (planned or after the snapshot)", summary.estimated),
                ("actual or estimated not stated (no flag and no snapshot date)", summary.not_stated_kind),
                ("start date not stated", summary.no_start_date),
                ("no country stated", summary.no_country),
                ("lead country not stated", summary.no_lead_country),
                ("multinational (2+ countries)", summary.multinational),
            ],
        )
    )
    sections = [
        Section(
            heading="What this report covers",
            text=(
                f"{summary.trials:,} registered trials from {', '.join(summary.sources) or 'no source'}, of which "
                f"{summary.trials - summary.not_cgt:,} are classified as cell and gene therapy (ex vivo or in vivo) "
                f"and {summary.not_cgt:,} are {a.NOT_CGT}: those are counted only in the modality tables. "
                "Counts are trial starts by the registry start date; trials without a start date or a country appear "
                "in 'not stated' rows."
            ),
            tables=[_html(overview)],
            notes=notes,
        )
    ]

    # Per-country view
    keep(csv_table("starts_by_country", by_country))
    country_ranking = a.ranking(by_country)
    ranked = keep(rank_table("ranking_by_country_actual", country_ranking, years))
    top = a.top_countries(country_ranking, 15)
    bar = _figure(
        "Actual CGT trial starts by country (per-country view, all years; EU-27 and not stated in the table)",
        source,
        [go.Bar(x=[r.name for r in top], y=[r.total for r in top])],
    )
    lines = _yearly_lines("Actual trial starts per year", source, by_country)
    sections.append(
        Section(
            heading="Trial starts by country",
            text=(
                "Per-country view: a trial counts once for each country with a site. The EU-27 row counts a trial "
                "once however many member states it runs in. Only actual starts are shown here; estimated starts "
                "have their own section."
            ),
            figures=[bar, lines],
            tables=[_html(ranked, 25)],
            notes=notes,
        )
    )

    keep(csv_table("starts_by_lead_country", by_lead))
    lead_ranked = keep(rank_table("ranking_by_lead_country_actual", a.ranking(by_lead), years))
    lead_lines = _yearly_lines("Actual trial starts per year, lead-country view", source, by_lead)
    sections.append(
        Section(
            heading="Trial starts by lead country",
            text=(
                "Lead-country view: each trial counts once, for its lead country (the only country, or the country "
                "of the first listed site). Trials whose lead country cannot be told are 'not stated'."
            ),
            figures=[lead_lines],
            tables=[_html(lead_ranked, 25)],
            notes=notes,
        )
    )

    estimated = keep(rank_table("ranking_by_country_estimated", a.ranking(by_country, StartStatus.ESTIMATED), years))
    est_bar = _figure(
        "Estimated (planned) trial starts per year",
        source,
        [
            go.Bar(x=[str(y) for y in s], y=list(s.values()), name=name)
            for code, name in FOCUS
            for s in [a.yearly(by_country, code, StartStatus.ESTIMATED)]
        ],
        barmode="group",
    )
    sections.append(
        Section(
            heading="Estimated (future) starts, kept apart",
            text=(
                "A start is estimated when the registry marks it so, or when it lies after the snapshot date. "
                "For sources that lost the actual/estimated flag, a start on or before the snapshot counts as actual."
            ),
            figures=[est_bar],
            tables=[_html(estimated, 15)],
            notes=notes,
        )
    )

    split_rows = a.modality_split(every, as_of)
    split = keep(csv_table("modality_split", split_rows))
    actual_split = [r for r in split_rows if r.status == StartStatus.ACTUAL]
    split_fig = _figure(
        "Actual trial starts per year by modality",
        source,
        [
            go.Bar(
                x=[str(r.year) for r in actual_split if r.modality == m],
                y=[r.trials for r in actual_split if r.modality == m],
                name=m.value,
            )
            for m in Modality
        ],
        barmode="stack",
    )
    mix = keep(csv_table("modality_mix", a.modality_mix(every)))
    rules = keep(csv_table("classification_rules", a.rule_counts(every)))
    sections.append(
        Section(
            heading="Ex vivo vs in vivo",
            text=(
                f"Each stored trial once, {a.NOT_CGT} ('unclassified') included as its own row. "
                "Modality comes from the source's own classification when it has one "
                "(rule 'upstream:<value>'), otherwise from the ordered rule set in landscape/data/modality_rules.yaml; "
                "the rule table shows how many trials each rule decided."
            ),
            figures=[split_fig],
            tables=[_html(mix), _html(rules), _html(split, 40)],
            notes=notes,
        )
    )

    first, last = _window(trials, as_of)
    focus_series = {code: a.yearly(by_country, code) for code, _ in FOCUS}
    growth_rows = [g for code, series in focus_series.items() for g in a.year_on_year(code, series, first + 1, last)]
    cagr_rows = [a.cagr(code, series, first, last) for code, series in focus_series.items()]
    growth = keep(csv_table("growth_year_on_year", growth_rows))
    rates = keep(csv_table("growth_cagr", cagr_rows))
    sections.append(
        Section(
            heading="Growth of actual starts",
            text=(
                f"Year-on-year change and compound annual growth (CAGR) of actual starts, {first} to {last} "
                f"(the last complete year before the snapshot). CAGR = (starts {last} / starts {first})^(1/"
                f"{last - first}) - 1. Per-country view."
            ),
            tables=[_html(rates), _html(growth)],
            notes=notes,
        )
    )

    phase_rows = a.phase_mix(trials)
    phases = keep(csv_table("phase_mix", phase_rows))
    phase_fig = _figure(
        "Trials by registry phase", source, [go.Bar(x=[r.group for r in phase_rows], y=[r.trials for r in phase_rows])]
    )
    sections.append(
        Section(
            heading="Phase mix",
            text="Each CGT trial once, by the phases the registry lists.",
            figures=[phase_fig],
            tables=[_html(phases)],
            notes=notes,
        )
    )

    sponsor_rows = a.sponsor_mix(trials)
    sponsors = keep(csv_table("sponsor_mix", sponsor_rows))
    groups = sorted({r.group for r in sponsor_rows})
    sponsor_fig = _figure(
        "Lead sponsor class by geography (share of trials)",
        source,
        [
            go.Bar(
                x=[name for code, name in FOCUS],
                y=[
                    next((r.share for r in sponsor_rows if r.geography == code and r.group == g), 0.0)
                    for code, _ in FOCUS
                ],
                name=g,
            )
            for g in groups
        ],
        barmode="stack",
        y="share",
    )
    sections.append(
        Section(
            heading="Sponsor mix: industry vs academic / hospital",
            text=(
                "Registry lead-sponsor class: INDUSTRY is industry; NIH, FED, OTHER_GOV, OTHER, NETWORK and INDIV are "
                "'academic / hospital (IIT share)', i.e. investigator-initiated. Per-country view, all start statuses."
            ),
            figures=[sponsor_fig],
            tables=[_html(sponsors)],
            notes=notes,
        )
    )

    report = Report(
        title="Cell and gene therapy trial starts: countries, years, modalities",
        subtitle=source,
        sections=sections,
        generated_at=generated_at,
        metadata={
            "trials": str(summary.trials),
            "snapshots": ", ".join(s.isoformat() for s in summary.snapshots) or "not stated",
            "CSV tables": str(len(tables)),
        },
    )
    return LandscapeReport(report, tables)
