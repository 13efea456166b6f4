"""The landscape store on SQLite and PostgreSQL: import through the unit of work, read back, re-import updates,
a failing batch leaves nothing half written, and no contact data reaches the database."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import InvalidInput
from cellrail.landscape.classify import classify
from cellrail.landscape.importers import read_records
from cellrail.landscape.model import Classification, ClassifiedTrial, Modality, Trial
from cellrail.landscape.ports import LandscapeUnitOfWork, UpsertCounts
from cellrail.landscape.services import KEPT_REJECTIONS, describe, import_paths
from cellrail.store import tables as t
from cellrail.store.engine import open_store
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import _fresh_postgres_database

DATA = Path(__file__).parent / "data" / "ctgov"
V2 = DATA / "api-v2-samples"
SAMPLES = [V2 / "aact-fixture-NCT02552212.json", V2 / "aact-fixture-NCT02210780.json"]
MONITOR = DATA / "ptjeong-onc-car-t" / "2026-08-22"
WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def factory(engine: Engine) -> Any:
    def open_uow() -> LandscapeUnitOfWork:
        return SqlUnitOfWork(engine)

    return open_uow


def stored(engine: Engine) -> list[ClassifiedTrial]:
    with SqlUnitOfWork(engine, write=False) as uow:
        return list(uow.landscape.load_classified_trials())


def test_import_and_read_back_equal_the_importer_output(engine: Engine, tmp_path: Path) -> None:
    for sample in SAMPLES:
        shutil.copy(sample, tmp_path / sample.name)
    result = import_paths(factory(engine), [tmp_path], clock=ManualClock(WHEN))
    assert (result.imported, result.updated, result.rejected) == (2, 0, [])
    assert result.by_source == {"ctgov-v2-json": 2}
    expected = sorted(
        (ClassifiedTrial(r, classify(r)) for r in read_records(tmp_path) if isinstance(r, Trial)),
        key=lambda c: c.trial.registry_id,
    )
    assert stored(engine) == expected
    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.landscape.count() == 2
        assert uow.landscape.get("NCT02552212") == expected[1]
        assert uow.landscape.get("NCT00000000") is None
        assert uow.landscape.imported_at("NCT02210780") == WHEN
        assert [c.trial.registry_id for c in uow.landscape.search(country="tw")] == ["NCT02552212"]
        assert len(uow.landscape.search(country="US")) == 2
        assert uow.landscape.search(modality=Modality.IN_VIVO) == []


def _contact_strings(study: dict[str, Any]) -> set[str]:
    """Names, phones and e-mails of every contact and official the record holds, read from the JSON by hand."""
    module = study["protocolSection"]["contactsLocationsModule"]
    people = list(module.get("centralContacts", [])) + list(module.get("overallOfficials", []))
    for location in module.get("locations", []):
        people.extend(location.get("contacts", []))
    found: set[str] = set()
    for person in people:
        found.update(person[key] for key in ("name", "phone", "email") if person.get(key))
        affiliation = person.get("affiliation", "")
        if any(ch.isdigit() for ch in affiliation):  # e.g. "1-844-599-2273 (UCB)": a phone number
            found.add(affiliation.split(" ")[0])
    return found


def test_no_contact_data_is_stored(engine: Engine, tmp_path: Path) -> None:
    contacts: set[str] = set()
    for sample in SAMPLES:
        study = json.loads(sample.read_text(encoding="utf-8"))
        # A location contact, as many CGT trials list one per site; the importer must not decode it.
        location = study["protocolSection"]["contactsLocationsModule"]["locations"][0]
        location["contacts"] = [{"name": "Dr. Jane Roe", "role": "CONTACT", "phone": "555-0100", "email": "j@x.org"}]
        study["protocolSection"]["contactsLocationsModule"]["centralContacts"] = [
            {"name": "John Doe, MD", "role": "CONTACT", "phone": "555-0199", "email": "john.doe@example.org"}
        ]
        contacts |= _contact_strings(study)
        (tmp_path / sample.name).write_text(json.dumps(study), encoding="utf-8")
    assert {"UCB Cares", "1-844-599-2273", "Dr. Jane Roe", "555-0100", "john.doe@example.org"} <= contacts
    import_paths(factory(engine), [tmp_path, MONITOR / "trials.csv"], clock=ManualClock(WHEN))
    dump = []
    with engine.connect() as connection:
        for table in (t.landscape_trials, t.landscape_trial_countries):
            for row in connection.execute(select(table)):
                dump.extend(str(value) for value in row)
    text = "\n".join(dump)
    assert "NCT02552212" in text
    assert [c for c in contacts if c in text] == []
    assert "redacted" not in text  # the monitor's sites.csv facilities are not stored either


def test_reimport_updates_in_place(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "study.json"
    shutil.copy(SAMPLES[1], path)
    first = import_paths(factory(engine), [path], clock=ManualClock(WHEN))
    again = import_paths(factory(engine), [path], clock=ManualClock(WHEN))
    assert (first.imported, first.updated, again.imported, again.updated) == (1, 0, 0, 1)
    study = json.loads(path.read_text(encoding="utf-8"))
    study["protocolSection"]["identificationModule"]["briefTitle"] = "A new title"
    study["protocolSection"]["contactsLocationsModule"]["locations"][0]["country"] = "Canada"
    path.write_text(json.dumps(study), encoding="utf-8")
    later = datetime(2026, 11, 26, tzinfo=UTC)
    changed = import_paths(factory(engine), [path], clock=ManualClock(later))
    assert (changed.imported, changed.updated) == (0, 1)
    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.landscape.count() == 1
        trial = uow.landscape.get("NCT02210780")
        assert trial is not None
        assert trial.trial.title == "A new title"
        assert trial.trial.countries == ("CA", "US")
        assert uow.landscape.imported_at("NCT02210780") == later


def test_a_failing_batch_leaves_whole_batches_only_and_a_rerun_completes(engine: Engine) -> None:
    calls = 0

    def failing(trial: Trial) -> Classification:
        nonlocal calls
        calls += 1
        if calls == 250:
            raise RuntimeError("classifier crashed")
        return classify(trial)

    with pytest.raises(RuntimeError, match="classifier crashed"):
        import_paths(factory(engine), [MONITOR / "trials.csv"], classify=failing, batch_size=100)
    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.landscape.count() == 200  # two whole batches; the third never reached the store
    rerun = import_paths(factory(engine), [MONITOR / "trials.csv"], batch_size=1000)
    assert (rerun.imported, rerun.updated) == (2274 - 200, 200)
    loaded = stored(engine)
    assert len(loaded) == 2274
    assert [c.trial.registry_id for c in loaded] == sorted({c.trial.registry_id for c in loaded})
    by_id = {c.trial.registry_id: c.trial for c in loaded}
    for record in read_records(MONITOR / "trials.csv"):
        assert isinstance(record, Trial)
        assert by_id[record.registry_id] == record
    assert {c.classification.rule for c in loaded if c.trial.upstream_product_type == "In vivo"} == {"upstream:In vivo"}


def test_batches_larger_than_one_statement_can_bind(engine: Engine) -> None:
    first = import_paths(factory(engine), [MONITOR / "trials.csv"], batch_size=5000)
    second = import_paths(factory(engine), [MONITOR / "trials.csv"], batch_size=5000)
    assert (first.imported, first.updated, second.imported, second.updated) == (2274, 0, 0, 2274)
    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.landscape.count() == 2274
        korean = uow.landscape.search(country="KR", limit=5000)
    assert korean
    assert all("KR" in c.trial.countries for c in korean)


def _version(trial: Trial, source: str, snapshot: date | None, title: str) -> ClassifiedTrial:
    return ClassifiedTrial(replace(trial, source=source, snapshot=snapshot, title=title), classify(trial))


def test_an_older_snapshot_from_another_source_never_overwrites_a_newer_record(engine: Engine) -> None:
    base = next(r for r in read_records(MONITOR / "trials.csv") if isinstance(r, Trial))
    newer = _version(base, "ptjeong-monitor-csv", date(2026, 8, 22), "2026 title")
    with SqlUnitOfWork(engine) as uow:
        assert uow.landscape.upsert_trials([newer], WHEN) == UpsertCounts(1, 0, 0)
        uow.commit()
    for older in (
        _version(base, "ctgov-classic-csv", date(2021, 5, 1), "2021 title"),  # an older snapshot
        _version(base, "ctgov-classic-csv", None, "undated title"),  # no snapshot: the oldest
    ):
        with SqlUnitOfWork(engine) as uow:
            assert uow.landscape.upsert_trials([older], WHEN) == UpsertCounts(0, 0, 1)
            uow.commit()
        assert [t.trial.title for t in stored(engine)] == ["2026 title"]
    for replacement in (
        _version(base, "ptjeong-monitor-csv", date(2026, 1, 1), "same source, earlier"),  # same source: replaces
        _version(base, "ctgov-v2-json", date(2026, 9, 1), "later snapshot"),  # a later snapshot: replaces
    ):
        with SqlUnitOfWork(engine) as uow:
            assert uow.landscape.upsert_trials([replacement], WHEN) == UpsertCounts(0, 1, 0)
            uow.commit()
        assert [t.trial.title for t in stored(engine)] == [replacement.trial.title]
        assert stored(engine)[0].trial.countries == base.countries


def test_the_import_counts_records_kept_because_the_stored_one_is_newer(engine: Engine) -> None:
    first = import_paths(factory(engine), [MONITOR / "trials.csv"], clock=ManualClock(WHEN))
    assert first.imported == 2274
    allogeneic = DATA / "jesnyder-allogenic-2021" / "clinicalGeneticEngineering.csv"
    overlap = {r.registry_id for r in read_records(allogeneic) if isinstance(r, Trial)} & {
        t.trial.registry_id for t in stored(engine)
    }
    assert overlap
    second = import_paths(factory(engine), [allogeneic], clock=ManualClock(WHEN))
    assert second.kept_newer == len(overlap)
    assert second.updated == 0
    with SqlUnitOfWork(engine, write=False) as uow:
        assert all(uow.landscape.get(i).trial.source == "ptjeong-monitor-csv" for i in overlap)  # type: ignore[union-attr]


def test_every_path_is_checked_before_the_first_batch_is_written(engine: Engine, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a registry file\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        import_paths(factory(engine), [MONITOR / "trials.csv", notes], batch_size=100, clock=ManualClock(WHEN))
    (problem,) = caught.value.problems
    assert (problem.field, problem.file) == ("path", str(notes))
    assert "not a known registry format" in problem.message
    assert stored(engine) == []  # trials.csv came first, yet none of its batches was written


def test_rejections_are_kept_up_to_a_bound_and_counted_in_full(engine: Engine, tmp_path: Path) -> None:
    header = (MONITOR / "trials.csv").read_text(encoding="utf-8").splitlines()[0]
    broken = tmp_path / "trials.csv"
    columns = header.count(",") + 1
    rows = [",".join(["NCT-BROKEN", *[""] * (columns - 1)])] * (KEPT_REJECTIONS + 5)
    broken.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = import_paths(factory(engine), [broken], clock=ManualClock(WHEN))
    assert (len(result.rejected), result.rejected_total) == (KEPT_REJECTIONS, KEPT_REJECTIONS + 5)
    assert (
        describe(result.rejected, 2, result.rejected_total)[-1]
        == f"... and {KEPT_REJECTIONS + 3:,} more rejected records"
    )


def test_within_one_batch_the_snapshot_rule_decides_too(engine: Engine) -> None:
    """The same trial twice in one batch (a new monitor snapshot and an old export imported together): the
    newer record is kept whichever comes last, exactly as across batches."""
    base = next(r for r in read_records(MONITOR / "trials.csv") if isinstance(r, Trial))
    newer = _version(replace(base, countries=("US",)), "ptjeong-monitor-csv", date(2026, 8, 22), "2026 title")
    older = _version(replace(base, countries=("CN",)), "ctgov-classic-csv", date(2021, 1, 1), "2021 title")
    for batch in ([newer, older], [older, newer]):
        with SqlUnitOfWork(engine) as uow:
            uow.landscape.upsert_trials(batch, WHEN)
            uow.commit()
        [kept] = stored(engine)
        assert (kept.trial.title, kept.trial.countries) == ("2026 title", ("US",))


def _b_writes_after_a_commits(engine: Engine, a_item: ClassifiedTrial, b_item: ClassifiedTrial) -> None:
    """Importer B upserts ``b_item``; importer A commits ``a_item`` after B's read of the store, before B writes."""
    with SqlUnitOfWork(engine) as uow_b:
        repository = uow_b.landscape
        execute, calls = repository.c.execute, [0]

        def a_commits_before_b_writes(statement: Any, *args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == 2:  # B has read the stored ids; its upsert is next
                with SqlUnitOfWork(engine) as uow_a:
                    uow_a.landscape.upsert_trials([a_item], WHEN)
                    uow_a.commit()
            return execute(statement, *args, **kwargs)

        repository.c.execute = a_commits_before_b_writes  # type: ignore[method-assign]
        repository.upsert_trials([b_item], WHEN)
        uow_b.commit()


def test_an_import_that_commits_in_between_is_respected_row_and_countries(postgres_server: str) -> None:
    """PostgreSQL, two importers: A commits a trial after B has read the store but before B writes. The upsert's
    WHERE decides against A's committed row, and B touches the countries only of rows it actually wrote: no
    duplicate-key error, and never a trial with another record's countries."""
    base = next(r for r in read_records(MONITOR / "trials.csv") if isinstance(r, Trial))
    newer = _version(replace(base, countries=("US",)), "ptjeong-monitor-csv", date(2026, 8, 22), "2026 title")
    older = _version(replace(base, countries=("CN",)), "ctgov-classic-csv", date(2021, 1, 1), "2021 title")
    same = _version(replace(base, countries=("FR",)), "ptjeong-monitor-csv", date(2026, 8, 22), "B's 2026 title")
    for b_item, expected in ((older, ("2026 title", ("US",))), (same, ("B's 2026 title", ("FR",)))):
        engine = open_store(_fresh_postgres_database(postgres_server))
        _b_writes_after_a_commits(engine, newer, b_item)
        [kept] = stored(engine)
        assert (kept.trial.title, kept.trial.countries) == expected
        engine.dispose()


def test_a_broken_zip_is_refused_before_anything_is_written_and_skipped_inside_a_directory(
    engine: Engine, tmp_path: Path
) -> None:
    broken = tmp_path / "named" / "studies.zip"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a zip archive")
    with pytest.raises(InvalidInput) as caught:
        import_paths(factory(engine), [MONITOR / "trials.csv", broken], batch_size=100, clock=ManualClock(WHEN))
    (problem,) = caught.value.problems
    assert (problem.field, problem.file) == ("path", str(broken))
    assert "not a readable ZIP archive" in problem.message
    assert stored(engine) == []
    walked = tmp_path / "walked"
    walked.mkdir()
    shutil.copy(broken, walked / "studies.zip")
    shutil.copy(SAMPLES[0], walked / SAMPLES[0].name)
    result = import_paths(factory(engine), [walked], clock=ManualClock(WHEN))
    assert result.imported == 1
    [rejected] = result.rejected
    assert rejected.source_file == str(walked / "studies.zip")
    assert rejected.reason.startswith("not a readable ZIP archive")
