"""Counting conventions of the landscape analytics on small hand-built trials."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellrail.landscape.analytics import (
    ACADEMIC,
    ALL,
    EU27_CODE,
    INDUSTRY,
    NOT_STATED,
    StartsRow,
    StartStatus,
    cagr,
    cgt_only,
    modality_split,
    overview,
    phase_mix,
    ranking,
    sponsor_group,
    sponsor_mix,
    start_status,
    starts_by_country,
    starts_by_lead_country,
    top_countries,
    year_on_year,
    yearly,
)
from cellrail.landscape.model import (
    Classification,
    ClassifiedTrial,
    DateKind,
    DatePrecision,
    Modality,
    Trial,
)

SNAPSHOT = date(2026, 8, 22)
EX_VIVO = Classification(Modality.EX_VIVO, "CAR-T", "autologous", "upstream:Autologous")
IN_VIVO = Classification(Modality.IN_VIVO, "LNP", None, "in-vivo-car")


def make(
    nct: str,
    countries: tuple[str, ...] = ("CN",),
    start: date | None = date(2020, 5, 1),
    kind: DateKind = DateKind.UNKNOWN,
    lead: str | None = "first",
    sponsor_class: str | None = "OTHER",
    phases: tuple[str, ...] = ("PHASE1",),
    classification: Classification = EX_VIVO,
) -> ClassifiedTrial:
    trial = Trial(
        registry_id=nct,
        title=nct,
        phases=phases,
        overall_status="RECRUITING",
        start_date=start,
        start_precision=DatePrecision.MONTH if start else None,
        start_kind=kind,
        countries=countries,
        lead_country=(countries[0] if countries else None) if lead == "first" else lead,
        sponsor="Sponsor",
        sponsor_class=sponsor_class,
        interventions=(),
        conditions=(),
        upstream_product_type=None,
        target=None,
        source="test",
        snapshot=SNAPSHOT,
    )
    return ClassifiedTrial(trial, classification)


def counts(rows: list[StartsRow], geography: str, status: StartStatus = StartStatus.ACTUAL) -> dict[int | None, int]:
    return {r.year: r.trials for r in rows if r.geography == geography and r.status == status}


def test_a_multinational_trial_counts_once_for_each_country_and_once_in_the_total() -> None:
    trials = [make("NCT1", ("CN", "US")), make("NCT2", ("US",))]
    rows = starts_by_country(trials)
    assert counts(rows, "CN") == {2020: 1}
    assert counts(rows, "US") == {2020: 2}
    assert counts(rows, ALL) == {2020: 2}


def test_eu27_counts_a_trial_with_sites_in_three_member_states_once() -> None:
    trials = [make("NCT1", ("DE", "ES", "FR")), make("NCT2", ("FR", "GB")), make("NCT3", ("GB",))]
    rows = starts_by_country(trials)
    assert counts(rows, EU27_CODE) == {2020: 2}
    assert (counts(rows, "DE"), counts(rows, "FR"), counts(rows, "GB")) == ({2020: 1}, {2020: 2}, {2020: 2})
    assert "GB" not in {r.geography for r in rows if r.aggregate}


def test_lead_country_view_counts_each_trial_once() -> None:
    trials = [
        make("NCT1", ("CN", "US"), lead="US"),
        make("NCT2", ("DE", "FR"), lead="FR"),
        make("NCT3", ("DE", "US"), lead=None),
    ]
    rows = starts_by_lead_country(trials)
    assert counts(rows, "US") == {2020: 1}
    assert counts(rows, "CN") == {}
    assert counts(rows, "FR") == {2020: 1}
    assert counts(rows, EU27_CODE) == {2020: 1}
    assert counts(rows, NOT_STATED) == {2020: 1}
    assert counts(rows, ALL) == {2020: 3}


def test_estimated_starts_are_kept_apart_from_actual_ones() -> None:
    trials = [
        make("NCT1", start=date(2025, 3, 1), kind=DateKind.ACTUAL),
        make("NCT2", start=date(2025, 6, 1), kind=DateKind.ESTIMATED),  # planned, though before the snapshot
        make("NCT3", start=date(2027, 1, 1), kind=DateKind.UNKNOWN),  # after the snapshot: cannot have happened
        make("NCT4", start=date(2026, 8, 1), kind=DateKind.UNKNOWN),  # kind lost, on or before snapshot: actual
        make("NCT5", start=date(2026, 9, 1), kind=DateKind.ACTUAL),  # "actual" after the snapshot: estimated
    ]
    rows = starts_by_country(trials)
    assert counts(rows, "CN", StartStatus.ACTUAL) == {2025: 1, 2026: 1}
    assert counts(rows, "CN", StartStatus.ESTIMATED) == {2025: 1, 2026: 1, 2027: 1}
    assert yearly(rows, "CN") == {2025: 1, 2026: 1}


def test_as_of_stands_in_for_a_missing_snapshot() -> None:
    item = make("NCT1", start=date(2026, 1, 1)).trial
    no_snapshot = replace(item, snapshot=None)
    assert start_status(no_snapshot, as_of=date(2025, 12, 31)) is StartStatus.ESTIMATED
    # no flag and no snapshot: a past start may have been planned at download time, so it is not called actual
    assert start_status(no_snapshot) is StartStatus.KIND_NOT_STATED
    assert start_status(no_snapshot, as_of=date(2026, 11, 25)) is StartStatus.KIND_NOT_STATED
    assert start_status(replace(no_snapshot, start_kind=DateKind.ACTUAL)) is StartStatus.ACTUAL
    assert start_status(replace(no_snapshot, snapshot=date(2026, 2, 1))) is StartStatus.ACTUAL


def test_trials_not_classified_as_cgt_are_counted_apart() -> None:
    trials = [make("NCT1"), make("NCT2", classification=Classification(Modality.UNCLASSIFIED, None, None, "none"))]
    facts = overview(trials)
    assert (facts.trials, facts.not_cgt) == (2, 1)
    assert [t.trial.registry_id for t in cgt_only(trials)] == ["NCT1"]
    ranked = ranking(starts_by_country(cgt_only(trials), date(2026, 1, 1)))
    assert {r.geography: r.total for r in ranked} == {"CN": 1, "ALL": 1}


def test_missing_start_and_country_are_explicit_not_stated_rows() -> None:
    trials = [make("NCT1", countries=(), start=None), make("NCT2", countries=()), make("NCT3", start=None)]
    rows = starts_by_country(trials)
    assert counts(rows, NOT_STATED, StartStatus.NOT_STATED) == {None: 1}
    assert counts(rows, NOT_STATED, StartStatus.ACTUAL) == {2020: 1}
    assert counts(rows, "CN", StartStatus.NOT_STATED) == {None: 1}
    assert sum(r.trials for r in rows if r.geography == ALL) == 3
    summary = overview(trials)
    assert (summary.trials, summary.no_start_date, summary.no_country, summary.actual) == (3, 2, 2, 1)


def test_growth_rates_use_actual_starts() -> None:
    trials = [
        make(f"NCT{y}{i}", start=date(y, 1, 1))
        for y, n in ((2020, 10), (2021, 15), (2022, 0), (2023, 40))
        for i in range(n)
    ]
    trials.append(make("NCTE", start=date(2023, 1, 1), kind=DateKind.ESTIMATED))
    series = yearly(starts_by_country(trials), "CN")
    assert series == {2020: 10, 2021: 15, 2023: 40}
    growth = year_on_year("CN", series, 2021, 2023)
    assert [(g.year, g.starts, g.previous, g.change) for g in growth] == [
        (2021, 15, 10, 0.5),
        (2022, 0, 15, -1.0),
        (2023, 40, 0, None),
    ]
    rate = cagr("CN", series, 2020, 2023)
    assert rate.cagr == pytest.approx(4 ** (1 / 3) - 1)
    assert cagr("CN", series, 2022, 2023).cagr is None
    with pytest.raises(ValueError, match="last > first"):
        cagr("CN", series, 2023, 2023)


def test_ranking_orders_geographies_by_actual_starts() -> None:
    trials = [make("NCT1", ("CN",)), make("NCT2", ("CN", "US")), make("NCT3", ("US",), start=date(2030, 1, 1))]
    ranked = ranking(starts_by_country(trials))
    assert [(r.geography, r.total) for r in ranked] == [("ALL", 2), ("CN", 2), ("US", 1)]


def test_modality_split_by_year_and_status() -> None:
    trials = [make("NCT1"), make("NCT2", classification=IN_VIVO), make("NCT3", start=None, classification=IN_VIVO)]
    split = {(r.year, r.status, r.modality): r.trials for r in modality_split(trials)}
    assert split == {
        (2020, StartStatus.ACTUAL, Modality.EX_VIVO): 1,
        (2020, StartStatus.ACTUAL, Modality.IN_VIVO): 1,
        (None, StartStatus.NOT_STATED, Modality.IN_VIVO): 1,
    }


def test_sponsor_classes_map_to_industry_or_academic() -> None:
    assert sponsor_group("INDUSTRY") == INDUSTRY
    assert {sponsor_group(c) for c in ("NIH", "FED", "OTHER_GOV", "OTHER", "NETWORK", "INDIV")} == {ACADEMIC}
    assert sponsor_group(None) == NOT_STATED
    assert sponsor_group("AMBIGUOUS") == "other (AMBIGUOUS)"
    assert sponsor_group("AMBIG") == NOT_STATED  # the API's "ambiguous" agency class says nothing
    trials = [
        make("NCT1", ("CN", "DE"), sponsor_class="INDUSTRY"),
        make("NCT2", ("CN",)),
        make("NCT3", ("US",), sponsor_class=None),
    ]
    mix = {(r.geography, r.group): (r.trials, r.share) for r in sponsor_mix(trials)}
    assert mix[("CN", INDUSTRY)] == (1, 0.5)
    assert mix[("CN", ACADEMIC)] == (1, 0.5)
    assert mix[(EU27_CODE, INDUSTRY)] == (1, 1.0)
    assert mix[("US", NOT_STATED)] == (1, 1.0)
    assert mix[(ALL, ACADEMIC)][1] == pytest.approx(1 / 3)


def test_phase_mix_keeps_combined_phases_and_not_stated() -> None:
    trials = [make("NCT1", phases=("PHASE1", "PHASE2")), make("NCT2", phases=()), make("NCT3")]
    mix = {r.group: r.trials for r in phase_mix(trials)}
    assert mix == {"PHASE1|PHASE2": 1, NOT_STATED: 1, "PHASE1": 1}


codes = st.sampled_from(["CN", "US", "DE", "FR", "ES", "GB", "JP"])
generated = st.builds(
    make,
    nct=st.just("NCT00000001"),
    countries=st.lists(codes, max_size=4, unique=True).map(lambda c: tuple(sorted(c))),
    start=st.one_of(st.none(), st.dates(date(2010, 1, 1), date(2028, 12, 31))),
    kind=st.sampled_from(list(DateKind)),
    sponsor_class=st.sampled_from([None, "INDUSTRY", "OTHER", "NIH", "NETWORK"]),
    classification=st.sampled_from([EX_VIVO, IN_VIVO]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(generated, max_size=25))
def test_every_trial_is_counted_and_none_is_dropped(trials: list[ClassifiedTrial]) -> None:
    per_country = starts_by_country(trials)
    assert sum(r.trials for r in per_country if r.geography == ALL) == len(trials)
    assert sum(r.trials for r in per_country if not r.aggregate) == sum(max(1, len(t.trial.countries)) for t in trials)
    assert sum(r.trials for r in per_country if r.geography == EU27_CODE) == sum(
        1 for t in trials if set(t.trial.countries) & {"DE", "FR", "ES"}
    )
    lead = starts_by_lead_country(trials)
    assert sum(r.trials for r in lead if not r.aggregate) == len(trials)
    assert sum(r.trials for r in modality_split(trials)) == len(trials)
    shares: dict[str, float] = {}
    for row in sponsor_mix(trials):
        shares[row.geography] = shares.get(row.geography, 0.0) + row.share
    assert all(abs(total - 1.0) < 1e-9 for total in shares.values())


def test_top_countries_leave_out_aggregates_and_not_stated() -> None:
    trials = [make("NCT1", countries=("DE", "FR")), make("NCT2", countries=()), make("NCT3", countries=("US",))]
    ranked = ranking(starts_by_country(trials, date(2026, 1, 1)))
    assert {r.geography for r in ranked} == {"DE", "FR", "US", NOT_STATED, EU27_CODE, ALL}
    assert {r.geography for r in top_countries(ranked, 10)} == {"DE", "FR", "US"}
    assert len(top_countries(ranked, 2)) == 2
