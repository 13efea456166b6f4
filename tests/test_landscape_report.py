"""The report on the real ONC CAR-T monitor snapshot: its tables must match counts made here with the csv module.

The ptjeong snapshot (tests/data/ctgov/ptjeong-onc-car-t/2026-08-22, 2,274 trials) is imported and reported through
the CLI; the expected numbers are counted straight from trials.csv, without the importers or the analytics. The
only shared pieces are the country-name lookup (names -> ISO codes) and the EU-27 member list, and the rule set for
the 168 trials whose upstream ProductType is 'Unclear'. Convention (docs/landscape-analytics.md): the start, sponsor
and phase tables count CGT trials only (modality ex vivo or in vivo); the modality tables count every trial.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cellrail.cli.main import app
from cellrail.landscape.classify import classify
from cellrail.landscape.countries import EU27, country_code
from cellrail.landscape.model import DateKind, Intervention, Trial
from cellrail.landscape.report import build_report
from cellrail.store.engine import create_store_engine
from cellrail.store.uow import SqlUnitOfWork

DATA = Path(__file__).parent / "data" / "ctgov" / "ptjeong-onc-car-t" / "2026-08-22"
UPSTREAM = {"Autologous": "ex_vivo", "Allogeneic/Off-the-shelf": "ex_vivo", "In vivo": "in_vivo"}
INDUSTRY = {"INDUSTRY"}
runner = CliRunner()


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("landscape")
    database = f"sqlite:///{folder / 'store.db'}"
    imported = runner.invoke(app, ["landscape", "import", str(DATA / "trials.csv"), "--database", database])
    assert imported.exit_code == 0, imported.output
    assert "2,274 new" in imported.output
    out = folder / "report.html"
    made = runner.invoke(
        app, ["landscape", "report", "--out", str(out), "--database", database, "--csv-dir", str(folder / "csv")]
    )
    assert made.exit_code == 0, made.output
    return folder


def table(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / "csv" / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def source_rows() -> list[dict[str, str]]:
    with (DATA / "trials.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def modality_of(row: dict[str, str]) -> str:
    """The upstream ProductType when it names a modality, else the rule set's answer."""
    modality = UPSTREAM.get(row["ProductType"])
    if modality is None:  # 'Unclear': the rule set decides
        trial = Trial(
            row["NCTId"],
            row["BriefTitle"],
            (),
            None,
            None,
            None,
            DateKind.UNKNOWN,
            (),
            None,
            None,
            None,
            tuple(Intervention("", n) for n in row["Interventions"].split("|") if n),
            (),
            None,
            None,
            "test",
            None,
        )
        modality = classify(trial).modality.value
    return modality


def cgt_rows() -> list[dict[str, str]]:
    return [row for row in source_rows() if modality_of(row) != "unclassified"]


def year_and_status(row: dict[str, str]) -> tuple[str, str]:
    start = row["StartDate"][:10]
    if not start and row["StartYear"]:
        start = f"{int(float(row['StartYear']))}-01-01"
    if not start:
        return "", "not stated"
    return start[:4], "actual" if start <= row["SnapshotDate"] else "estimated"


def codes(row: dict[str, str]) -> set[str]:
    found = set()
    for name in row["Countries"].split("|"):
        if name.strip():
            code = country_code(name.strip())
            assert code is not None, name
            found.add(code)
    return found


def geographies(row: dict[str, str]) -> set[str]:
    found = codes(row) or {"not stated"}
    if found & EU27:
        found.add("EU27")
    return found | {"ALL"}


def test_starts_per_country_per_year_match_an_independent_count(report_dir: Path) -> None:
    expected: Counter[tuple[str, str, str]] = Counter()
    for row in cgt_rows():
        year, status = year_and_status(row)
        for geography in geographies(row):
            expected[(geography, year, status)] += 1
    got = {(r["geography"], r["year"], r["status"]): int(r["trials"]) for r in table(report_dir, "starts_by_country")}
    assert got == dict(expected)
    # the headline numbers, as they stand in the snapshot
    assert sum(n for (g, _, s), n in expected.items() if g == "ALL" and s == "actual") == 1907
    assert sum(n for (g, _, s), n in expected.items() if g == "ALL" and s == "not stated") == 248
    assert sum(n for (g, _, _), n in expected.items() if g == "not stated") == 134


def test_ranking_totals_match_and_china_leads(report_dir: Path) -> None:
    actual: Counter[str] = Counter()
    for row in cgt_rows():
        if year_and_status(row)[1] == "actual":
            actual.update(geographies(row))
    ranking = table(report_dir, "ranking_by_country_actual")
    assert {r["geography"]: int(r["total"]) for r in ranking} == dict(actual)
    countries = [r["geography"] for r in ranking if r["aggregate"] == "False" and r["geography"] != "not stated"]
    assert countries[:2] == ["CN", "US"]


def test_modality_split_matches_upstream_product_type(report_dir: Path) -> None:
    expected: Counter[tuple[str, str, str]] = Counter()
    for row in source_rows():
        expected[(*year_and_status(row), modality_of(row))] += 1
    got = {(r["year"], r["status"], r["modality"]): int(r["trials"]) for r in table(report_dir, "modality_split")}
    assert got == dict(expected)
    rules = {r["rule"]: int(r["trials"]) for r in table(report_dir, "classification_rules")}
    upstream = Counter(row["ProductType"] for row in source_rows())
    for value in UPSTREAM:
        assert rules[f"upstream:{value}"] == upstream[value]
    assert sum(n for rule, n in rules.items() if not rule.startswith("upstream:")) == upstream["Unclear"]


def test_sponsor_mix_matches_lead_sponsor_class(report_dir: Path) -> None:
    expected: Counter[tuple[str, str]] = Counter()
    for row in cgt_rows():
        group = "industry" if row["LeadSponsorClass"] in INDUSTRY else "academic / hospital (IIT share)"
        for geography in geographies(row) & {"ALL", "CN", "US", "EU27"}:
            expected[(geography, group)] += 1
    got = {(r["geography"], r["group"]): int(r["trials"]) for r in table(report_dir, "sponsor_mix")}
    assert got == dict(expected)


def test_phase_mix_matches(report_dir: Path) -> None:
    expected = Counter("not stated" if r["Phase"] in ("", "Unknown") else r["Phase"] for r in cgt_rows())
    got = {r["group"]: int(r["trials"]) for r in table(report_dir, "phase_mix")}
    assert got == dict(expected)


def test_growth_rates_follow_from_the_yearly_counts(report_dir: Path) -> None:
    by_year = {(r["geography"], int(r["last_year"])): r for r in table(report_dir, "growth_cagr")}
    china = by_year[("CN", 2025)]
    assert (china["first_year"], china["first_starts"], china["last_starts"]) == ("2020", "88", "179")
    assert float(china["cagr"]) == pytest.approx((179 / 88) ** (1 / 5) - 1, abs=1e-6)


def test_page_is_offline_sourced_and_states_caveats(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page)
    source = "Source: ClinicalTrials.gov (NLM), via ptjeong/ONC-CAR-T-Trials-Monitor, snapshot 2026-08-22"
    figures = page.count("Plotly.newPlot")
    assert figures >= 6
    assert page.count(source) >= figures  # on every chart (annotation) and under every section
    for caveat in ("LLM-assisted", "month-only dates", "once for each of its countries", "Registry lag"):
        assert caveat in page
    assert date(2026, 8, 22).isoformat() in page


def test_charts_are_bar_and_line_only(report_dir: Path) -> None:
    # geo/map traces fetch topojson or tiles from a CDN, so the page would not work offline
    engine = create_store_engine(f"sqlite:///{report_dir / 'store.db'}")
    with SqlUnitOfWork(engine, write=False) as uow:
        trials = list(uow.landscape.load_classified_trials())
    engine.dispose()
    built = build_report(trials, datetime(2026, 11, 25, tzinfo=UTC))
    types = {trace.type for section in built.report.sections for figure in section.figures for trace in figure.data}
    assert types == {"bar", "scatter"}
    assert set(built.tables) == {p.stem for p in (report_dir / "csv").glob("*.csv")}
    assert not hasattr(built, "write")  # building is pure; cellrail.landscape.report_files writes the files
