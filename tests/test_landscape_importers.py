"""The registry importers against real records: every field of the API v2 samples checked against the JSON read
by hand, the classic CSV's prose dates and comma country names, the monitor CSV's quirks, and bad records."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellrail.kernel.errors import InvalidInput
from cellrail.landscape.countries import (
    EU27,
    TABLE,
    country_code,
    country_name,
    country_of_location,
    load_country_table,
)
from cellrail.landscape.importers import Rejected, detect_format, read_records
from cellrail.landscape.importers.base import iso_date
from cellrail.landscape.importers.ctgov_classic_csv import prose_date
from cellrail.landscape.importers.ptjeong_csv import pandas_date
from cellrail.landscape.model import DateKind, DatePrecision, Intervention, Trial

DATA = Path(__file__).parent / "data" / "ctgov"
V2 = DATA / "api-v2-samples"
CLASSIC = DATA / "jesnyder-allogenic-2021"
MONITOR = DATA / "ptjeong-onc-car-t" / "2026-08-22"
SAMPLES = {"NCT02552212": V2 / "aact-fixture-NCT02552212.json", "NCT02210780": V2 / "aact-fixture-NCT02210780.json"}
# Written out by hand from ISO 3166-1, for the names the two samples use.
ISO_BY_HAND = {
    "United States": "US",
    "Australia": "AU",
    "Bulgaria": "BG",
    "Canada": "CA",
    "Czechia": "CZ",
    "Hungary": "HU",
    "Poland": "PL",
    "Russian Federation": "RU",
    "Taiwan": "TW",
}


def trials(path: Path) -> list[Trial]:
    return [r for r in read_records(path) if isinstance(r, Trial)]


def rejected(path: Path) -> list[Rejected]:
    return [r for r in read_records(path) if isinstance(r, Rejected)]


def only(path: Path) -> Trial:
    (trial,) = trials(path)
    return trial


# --- API v2 JSON ---------------------------------------------------------------------------------------------


def expected_from_json(study: dict[str, Any]) -> Trial:
    """The Trial the importer must produce, derived field by field from the raw JSON."""
    p = study["protocolSection"]
    start = p["statusModule"]["startDateStruct"]
    parts = [int(x) for x in start["date"].split("-")]
    precision = {3: DatePrecision.DAY, 2: DatePrecision.MONTH, 1: DatePrecision.YEAR}[len(parts)]
    locations = p["contactsLocationsModule"]["locations"]
    countries = tuple(sorted({ISO_BY_HAND[loc["country"]] for loc in locations}))
    lead = countries[0] if len(countries) == 1 else ISO_BY_HAND[locations[0]["country"]]
    holder = study["derivedSection"]["miscInfoModule"]["versionHolder"]
    return Trial(
        registry_id=p["identificationModule"]["nctId"],
        title=p["identificationModule"]["briefTitle"],
        phases=tuple(p["designModule"]["phases"]),
        overall_status=p["statusModule"]["overallStatus"],
        start_date=date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1),
        start_precision=precision,
        start_kind=DateKind(start["type"].lower()),
        countries=countries,
        lead_country=lead,
        sponsor=p["sponsorCollaboratorsModule"]["leadSponsor"]["name"],
        sponsor_class=p["sponsorCollaboratorsModule"]["leadSponsor"]["class"],
        interventions=tuple(Intervention(i["type"], i["name"]) for i in p["armsInterventionsModule"]["interventions"]),
        conditions=tuple(p["conditionsModule"]["conditions"]),
        upstream_product_type=None,
        target=None,
        source="ctgov-v2-json",
        snapshot=date.fromisoformat(holder),
    )


@pytest.mark.parametrize("nct", sorted(SAMPLES))
def test_api_v2_sample_every_field(nct: str) -> None:
    study = json.loads(SAMPLES[nct].read_text(encoding="utf-8"))
    assert only(SAMPLES[nct]) == expected_from_json(study)


def test_api_v2_samples_known_facts() -> None:
    big = only(SAMPLES["NCT02552212"])
    raw = json.loads(SAMPLES["NCT02552212"].read_text(encoding="utf-8"))
    assert len(raw["protocolSection"]["contactsLocationsModule"]["locations"]) == 105
    assert big.phases == ("PHASE3",)
    assert big.countries == ("AU", "BG", "CA", "CZ", "HU", "PL", "RU", "TW", "US")
    assert (big.start_date, big.start_precision, big.start_kind) == (
        date(2015, 9, 1),
        DatePrecision.MONTH,
        DateKind.ACTUAL,
    )
    assert {i.type for i in big.interventions} == {"BIOLOGICAL", "OTHER"}
    small = only(SAMPLES["NCT02210780"])
    assert (small.start_date, small.start_precision, small.start_kind) == (
        date(2014, 8, 5),
        DatePrecision.DAY,
        DateKind.ACTUAL,
    )
    assert small.phases == ("PHASE2",)
    assert small.countries == ("US",)
    assert small.lead_country == "US"


def _sample(nct: str = "NCT02210780") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLES[nct].read_text(encoding="utf-8"))
    return data


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_bad_api_v2_records_are_rejected_with_id_and_reason_while_others_import(tmp_path: Path) -> None:
    shutil.copy(SAMPLES["NCT02552212"], tmp_path / "good.json")
    (tmp_path / "broken.json").write_text(SAMPLES["NCT02210780"].read_text(encoding="utf-8")[:5000])
    no_id = _sample()
    del no_id["protocolSection"]["identificationModule"]["nctId"]
    _write(tmp_path / "no-id.json", no_id)
    bad_date = _sample()
    bad_date["protocolSection"]["identificationModule"]["nctId"] = "NCT00000001"
    bad_date["protocolSection"]["statusModule"]["startDateStruct"]["date"] = "2019-13-45"
    _write(tmp_path / "bad-date.json", bad_date)
    bad_kind = _sample()
    bad_kind["protocolSection"]["identificationModule"]["nctId"] = "NCT00000002"
    bad_kind["protocolSection"]["statusModule"]["startDateStruct"]["type"] = "GUESSED"
    _write(tmp_path / "bad-kind.json", bad_kind)
    bad_country = _sample()
    bad_country["protocolSection"]["identificationModule"]["nctId"] = "NCT00000003"
    bad_country["protocolSection"]["contactsLocationsModule"]["locations"][0]["country"] = "Atlantis"
    _write(tmp_path / "bad-country.json", bad_country)
    wrong_type = _sample()
    wrong_type["protocolSection"]["identificationModule"]["nctId"] = "NCT00000004"
    wrong_type["protocolSection"]["designModule"]["phases"] = "PHASE2"
    _write(tmp_path / "wrong-type.json", wrong_type)

    records = list(read_records(tmp_path))
    assert [r.registry_id for r in records if isinstance(r, Trial)] == ["NCT02552212"]
    reasons = {Path(r.source_file).name: (r.record_id, r.reason) for r in records if isinstance(r, Rejected)}
    assert reasons["broken.json"][0] == "NCT02210780"
    assert "not valid JSON" in reasons["broken.json"][1]
    assert reasons["no-id.json"] == (None, "protocolSection.identificationModule.nctId: required field is missing")
    assert reasons["bad-date.json"][0] == "NCT00000001"
    assert "startDateStruct.date: '2019-13-45' is not a date" in reasons["bad-date.json"][1]
    assert reasons["bad-kind.json"][0] == "NCT00000002"
    assert "startDateStruct.type" in reasons["bad-kind.json"][1]
    assert reasons["bad-country.json"][0] == "NCT00000003"
    assert "'Atlantis'" in reasons["bad-country.json"][1]
    assert reasons["wrong-type.json"][0] == "NCT00000004"
    assert "$.protocolSection.designModule.phases" in (reasons["wrong-type.json"][1])
    assert len(reasons) == 6


def test_api_page_file_rejects_only_its_bad_study(tmp_path: Path) -> None:
    bad = _sample()
    bad["protocolSection"]["identificationModule"]["nctId"] = "NCT1"
    page = _write(tmp_path / "page.json", {"studies": [_sample("NCT02552212"), bad, _sample()]})
    records = list(read_records(page))
    assert [r.registry_id for r in records if isinstance(r, Trial)] == ["NCT02552212", "NCT02210780"]
    (rejection,) = [r for r in records if isinstance(r, Rejected)]
    assert (rejection.line_or_index, rejection.record_id) == (1, "NCT1")
    assert "is not a ClinicalTrials.gov id" in rejection.reason


def test_zip_and_directory_import_the_same_trials(tmp_path: Path) -> None:
    archive = tmp_path / "studies.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for nct, path in SAMPLES.items():
            z.write(path, f"ctg-studies/{nct}.json")
        z.writestr("ctg-studies/README.txt", "not a study")
    directory = tmp_path / "dir"
    (directory / "nested").mkdir(parents=True)
    for nct, path in SAMPLES.items():
        shutil.copy(path, directory / "nested" / f"{nct}.json")
    _write(directory / "metadata.json", {"snapshot_date": "2026-08-22"})  # not a study: skipped in a directory
    (directory / "LICENSE").write_text("MIT")
    from_zip = sorted(trials(archive), key=lambda t: t.registry_id)
    from_dir = sorted(trials(directory), key=lambda t: t.registry_id)
    assert [t.registry_id for t in from_zip] == ["NCT02210780", "NCT02552212"]
    assert from_zip == from_dir
    assert rejected(directory) == []
    assert detect_format(archive) == "ctgov-v2-json-zip"


def test_zip_members_are_read_in_the_archives_own_order_without_a_sorted_copy(tmp_path: Path) -> None:
    # the central directory is already one ZipInfo per member (O(members), docs/landscape.md): no second, sorted list
    archive = tmp_path / "studies.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for nct, path in sorted(SAMPLES.items(), reverse=True):
            z.write(path, f"{nct}.json")
    assert [t.registry_id for t in trials(archive)] == sorted(SAMPLES, reverse=True)


def test_classic_csv_sponsor_class_is_the_first_funded_by_the_lead_sponsors_class() -> None:
    # Funded Bys follows Sponsor/Collaborators: "Memorial Sloan Kettering|Stanford|Juno" -> "Other|Industry"
    path = DATA / "jesnyder-allogenic-2021" / "clinicalGeneticEngineering.csv"
    found = {t.registry_id: t for t in trials(path) if t.registry_id in ("NCT02498912", "NCT01586403")}
    assert (found["NCT02498912"].sponsor, found["NCT02498912"].sponsor_class) == (
        "Memorial Sloan Kettering Cancer Center",
        "OTHER",
    )
    assert found["NCT01586403"].sponsor_class == "OTHER"


def test_unknown_files_named_directly_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match="not a known registry format"):
        list(read_records(tmp_path / "notes.txt"))
    with pytest.raises(InvalidInput, match="no such file"):
        list(read_records(tmp_path / "missing.json"))
    with pytest.raises(InvalidInput, match=r"read with its trials\.csv"):
        list(read_records(MONITOR / "sites.csv"))
    not_study = _write(tmp_path / "meta.json", {"snapshot_date": "2026-08-22"})
    (rejection,) = rejected(not_study)  # named directly, a JSON that is not a study is reported
    assert "protocolSection: required field is missing" in rejection.reason


# --- classic CSV export ---------------------------------------------------------------------------------------


def _classic_rows() -> list[dict[str, str]]:
    rows = []
    for path in sorted(CLASSIC.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def test_classic_csv_prose_dates_and_comma_country_names() -> None:
    rows = _classic_rows()
    assert all(len(row) == 27 for row in rows)
    imported = {t.registry_id: t for t in trials(CLASSIC)}
    assert rejected(CLASSIC) == []
    assert len(imported) == len({row["NCT Number"] for row in rows})
    ipsc = {t.registry_id: t for t in trials(CLASSIC / "clinicaliPSC.csv")}
    first = ipsc["NCT03696628"]  # "September 25, 2017", one site in Montpellier
    assert (first.start_date, first.start_precision, first.start_kind) == (
        date(2017, 9, 25),
        DatePrecision.DAY,
        DateKind.UNKNOWN,
    )
    assert first.countries == ("FR",)
    assert first.lead_country == "FR"
    assert first.phases == ("NA",)
    assert first.overall_status == "RECRUITING"
    assert first.sponsor == "University Hospital, Montpellier"
    assert Intervention("BIOLOGICAL", "blood test") in first.interventions
    month_only = [row for row in rows if len(row["Start Date"].split()) == 2]
    assert month_only
    for row in month_only:
        trial = imported[row["NCT Number"]]
        assert trial.start_precision is DatePrecision.MONTH
        assert trial.start_date is not None
        assert trial.start_date.day == 1
        assert trial.start_date.year == int(row["Start Date"].split()[1])
    for name, code in (("Korea, Republic of", "KR"), ("Iran, Islamic Republic of", "IR"), ("Czech Republic", "CZ")):
        with_it = {row["NCT Number"] for row in rows if f", {name}" in row["Locations"]}
        assert with_it, name
        assert with_it <= {nct for nct, t in imported.items() if code in t.countries}, name
    korean = next(
        row for row in rows if row["Locations"].endswith(", Korea, Republic of") and "|" not in row["Locations"]
    )
    assert imported[korean["NCT Number"]].countries == ("KR",)


def test_classic_csv_bad_rows_are_rejected(tmp_path: Path) -> None:
    source = CLASSIC / "clinicaliPSC.csv"
    lines = source.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    header, first, second = lines[0], lines[1], lines[2]
    bad_date = first.replace('"September 25, 2017"', '"Septober 25, 2017"')
    no_id = second.replace('"NCT04696328"', '""')
    short = '1,"NCT09999999","too short"\n'
    path = tmp_path / "export.csv"
    path.write_text(header + bad_date + no_id + short + "".join(lines[3:6]), encoding="utf-8")
    records = list(read_records(path))
    found = [r for r in records if isinstance(r, Rejected)]
    assert [(r.line_or_index, r.record_id) for r in found] == [(2, "NCT03696628"), (3, ""), (4, "NCT09999999")]
    assert "Start Date: 'Septober 25, 2017'" in found[0].reason
    assert "NCT Number: required field is missing" in found[1].reason
    assert "3 fields, the header 27" in found[2].reason
    assert len([r for r in records if isinstance(r, Trial)]) == 3


# --- ONC CAR-T monitor CSV -------------------------------------------------------------------------------------


def test_monitor_counts_match_the_readme() -> None:
    with (MONITOR / "trials.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    no_start = sum(1 for row in rows if not row["StartDate"])
    no_countries = sum(1 for row in rows if not row["Countries"])
    assert (len(rows), no_start, no_countries) == (2274, 255, 144)
    imported = trials(MONITOR / "trials.csv")
    assert len(imported) == 2274
    assert sum(1 for t in imported if t.start_date is None) == no_start
    assert sum(1 for t in imported if not t.countries) == no_countries
    assert all(t.start_kind is DateKind.UNKNOWN and t.snapshot == date(2026, 8, 22) for t in imported)
    by_id = {t.registry_id: t for t in imported}
    for row in rows:
        trial = by_id[row["NCTId"]]
        assert trial.upstream_product_type == row["ProductType"]
        assert trial.sponsor_class == row["LeadSponsorClass"]
        assert trial.phases == tuple(p for p in row["Phase"].split("|") if p != "Unknown")
        if row["StartYear"]:
            assert trial.start_date is not None
            assert trial.start_date.year == int(float(row["StartYear"]))
        assert len(trial.countries) == len(set(filter(None, row["Countries"].split("|"))))
        assert (trial.lead_country is None) == (not row["Countries"])


def test_monitor_names_and_lead_country_from_the_first_site() -> None:
    by_id = {t.registry_id: t for t in trials(MONITOR / "trials.csv")}
    assert "KR" in by_id["NCT02303821"].countries
    assert "TR" in by_id["NCT02303821"].countries
    with (MONITOR / "sites.csv").open(encoding="utf-8", newline="") as handle:
        first_site = next(row for row in csv.DictReader(handle) if row["NCTId"] == "NCT02303821")
    assert first_site["Country"] == "Turkey (Türkiye)"
    assert by_id["NCT02303821"].lead_country == "TR"
    assert all("redacted" not in repr(t) for t in by_id.values())


def test_monitor_dates_claim_no_more_precision_than_pandas_left() -> None:
    assert pandas_date("2015-09-01", "2015.0") == (date(2015, 9, 1), DatePrecision.MONTH)
    assert pandas_date("2015-01-01", "2015.0") == (date(2015, 1, 1), DatePrecision.YEAR)
    assert pandas_date("2015-09-14", "2015.0") == (date(2015, 9, 14), DatePrecision.DAY)
    assert pandas_date("", "2019.0") == (date(2019, 1, 1), DatePrecision.YEAR)
    assert pandas_date("", "") == (None, None)


# --- countries ----------------------------------------------------------------------------------------------------


def test_country_names_as_registries_spell_them() -> None:
    assert len(EU27) == 27
    assert "GB" not in EU27
    assert {"DE", "FR", "HR", "CZ"} <= EU27
    for name, code in {
        "Korea, Republic of": "KR",
        "South Korea": "KR",
        "Iran, Islamic Republic of": "IR",
        "Türkiye": "TR",
        "Turkey": "TR",
        "Turkey (Türkiye)": "TR",
        "Czechia": "CZ",
        "Czech Republic": "CZ",
        "Hong Kong": "HK",
        "Taiwan": "TW",
        "Russian Federation": "RU",
        "  united   states ": "US",
        # countries that no longer exist, as old ClinicalTrials.gov records spell them (ISO 3166-3 codes)
        "Former Serbia and Montenegro": "CS",
        "Netherlands Antilles": "AN",
        "Former Yugoslavia": "YU",
    }.items():
        assert country_code(name) == code, name
    assert country_code("NA") is None
    assert country_code("Atlantis") is None
    assert country_name("KR") == "Korea, Republic of"
    assert country_name("ZZ") == "ZZ"
    assert country_of_location("Samsung Medical Center, Seoul, Korea, Republic of") == "KR"
    assert country_of_location("Emory University, Atlanta, Georgia, United States") == "US"
    assert country_of_location("Somewhere, Nowhere") is None
    assert country_of_location("Clinical Center, Belgrade, Former Serbia and Montenegro") == "CS"


def test_country_table_errors_name_file_and_line() -> None:
    text = (
        "source: s\neu27:\n  source: s\n  members: [AT, BE, BG, HR, CY, CZ, DK, EE, FI, FR, DE, GR, HU, IE, IT, LV,"
        " LT, LU, MT, NL, PL, PT, RO, SK, SI, ES, XX]\ncountries:\n  AT: [Austria]\n  BE: [Belgium, Austria]\n"
    )
    with pytest.raises(InvalidInput) as raised:
        load_country_table(text, "countries.yaml")
    message = str(raised.value)
    assert "countries.yaml:7: countries.BE[1]: 'Austria' is already a name of AT" in message
    assert "XX is not in the country list" in message


# --- invariants (Hypothesis) --------------------------------------------------------------------------------------

ALL_NAMES = sorted(TABLE.codes)  # folded spellings
PRECISIONS = st.sampled_from(list(DatePrecision))
PLACE = st.text(alphabet=st.characters(categories=("Lu", "Ll"), max_codepoint=0x24F), min_size=1, max_size=12)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)), PRECISIONS)
def test_registry_dates_read_back_as_the_first_day_of_their_period(day: date, precision: DatePrecision) -> None:
    iso = {"day": day.isoformat(), "month": day.isoformat()[:7], "year": day.isoformat()[:4]}[precision.value]
    first = {"day": day, "month": day.replace(day=1), "year": day.replace(month=1, day=1)}[precision.value]
    assert iso_date(iso, "f") == (first, precision)
    if precision is not DatePrecision.YEAR:
        prose = day.strftime("%B %-d, %Y") if precision is DatePrecision.DAY else day.strftime("%B %Y")
        assert prose_date(prose, "Start Date") == (first, precision)


@given(PLACE, PLACE, PLACE, st.sampled_from(ALL_NAMES))
def test_location_country_is_found_whatever_the_place_names(facility: str, city: str, state: str, name: str) -> None:
    assert country_of_location(f"{facility}, {city}, {state}, {name}") == TABLE.codes[name]
