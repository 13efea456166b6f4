"""The landscape's repository (``landscape.ports.LandscapeRepository``) with SQLAlchemy Core on one connection.

An upsert is a set operation per batch: one query reads the stored (source, snapshot) of the batch's registry ids,
then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` (SQLite and PostgreSQL) writes the batch. The WHERE keeps a
stored record that is newer than the incoming one (its snapshot is later; a record without snapshot is the oldest)
unless both come from the same source, so importing an old export after a new one does not roll data back, and
two concurrent importers cannot interleave a select and an insert into a duplicate-key error. RETURNING names the
rows the WHERE let through; only their countries are replaced. Whether a written row was new or an update comes
from a read before the upsert (under concurrency, what this importer saw).
Reads page by registry id (keyset), so reading the whole store holds one page at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Select, delete, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from cellrail.landscape.model import (
    Classification,
    ClassifiedTrial,
    DateKind,
    DatePrecision,
    Intervention,
    Modality,
    Trial,
)
from cellrail.landscape.ports import UpsertCounts
from cellrail.store import tables as t

PAGE = 1000
IN_LIMIT = 1000
_trials = t.landscape_trials
_countries = t.landscape_trial_countries


def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (registry_id) DO UPDATE ... WHERE the incoming record is not older than the stored
    one (same source, or the stored record has no snapshot, or the incoming snapshot is the same or later)."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_trials)
    incoming = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_trials.c.registry_id],
        set_={c.name: incoming[c.name] for c in _trials.c if c.name != "registry_id"},
        where=or_(
            _trials.c.source == incoming.source,
            _trials.c.snapshot.is_(None),
            incoming.snapshot >= _trials.c.snapshot,
        ),
    )


def replaces(stored_source: str, stored_snapshot: Any, item: ClassifiedTrial) -> bool:
    """Whether ``item`` may replace the stored record (the same rule as the upsert's WHERE)."""
    snapshot = item.trial.snapshot
    return (
        stored_source == item.trial.source
        or stored_snapshot is None
        or (snapshot is not None and snapshot >= stored_snapshot)
    )


def _row(item: ClassifiedTrial, imported_at: datetime) -> dict[str, Any]:
    trial, classification = item.trial, item.classification
    return {
        "registry_id": trial.registry_id,
        "title": trial.title,
        "phases": orjson.dumps(trial.phases).decode(),
        "overall_status": trial.overall_status,
        "start_date": trial.start_date,
        "start_precision": trial.start_precision.value if trial.start_precision else None,
        "start_kind": trial.start_kind.value,
        "lead_country": trial.lead_country,
        "sponsor": trial.sponsor,
        "sponsor_class": trial.sponsor_class,
        "interventions": orjson.dumps([(i.type, i.name) for i in trial.interventions]).decode(),
        "conditions": orjson.dumps(trial.conditions).decode(),
        "upstream_product_type": trial.upstream_product_type,
        "target": trial.target,
        "source": trial.source,
        "snapshot": trial.snapshot,
        "imported_at": imported_at,
        "modality": classification.modality.value,
        "platform": classification.platform,
        "cell_source": classification.cell_source,
        "rule": classification.rule,
    }


def _classified(row: Any, countries: Sequence[str]) -> ClassifiedTrial:
    trial = Trial(
        registry_id=row.registry_id,
        title=row.title,
        phases=tuple(orjson.loads(row.phases)),
        overall_status=row.overall_status,
        start_date=row.start_date,
        start_precision=DatePrecision(row.start_precision) if row.start_precision else None,
        start_kind=DateKind(row.start_kind),
        countries=tuple(countries),
        lead_country=row.lead_country,
        sponsor=row.sponsor,
        sponsor_class=row.sponsor_class,
        interventions=tuple(Intervention(kind, name) for kind, name in orjson.loads(row.interventions)),
        conditions=tuple(orjson.loads(row.conditions)),
        upstream_product_type=row.upstream_product_type,
        target=row.target,
        source=row.source,
        snapshot=row.snapshot,
    )
    return ClassifiedTrial(trial, Classification(Modality(row.modality), row.platform, row.cell_source, row.rule))


def _chunks(ids: Sequence[str], size: int = IN_LIMIT) -> Iterator[Sequence[str]]:
    """Slices of at most ``size`` ids, so no statement exceeds SQLite's limit on bound parameters."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class SqlLandscape:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def upsert_trials(self, batch: Sequence[ClassifiedTrial], imported_at: datetime) -> UpsertCounts:
        rows: dict[str, ClassifiedTrial] = {}
        for item in batch:  # one id twice in a batch: the same rule as against the store decides which is kept
            previous = rows.get(item.trial.registry_id)
            if previous is None or replaces(previous.trial.source, previous.trial.snapshot, item):
                rows[item.trial.registry_id] = item
        if not rows:
            return UpsertCounts(0, 0)
        ids = list(rows)
        stored: set[str] = set()
        for chunk in _chunks(ids):
            stored.update(
                self.c.execute(select(_trials.c.registry_id).where(_trials.c.registry_id.in_(chunk))).scalars()
            )
        # The upsert's WHERE decides which rows are written, also against an importer that committed since the
        # read above; RETURNING names them, and only their countries are replaced. (On PostgreSQL a written row
        # stays locked until commit, so no other importer can change it or its countries in between.)
        statement = _upsert(self.c.dialect.name).returning(_trials.c.registry_id)
        written = sorted(self.c.execute(statement, [_row(rows[i], imported_at) for i in ids]).scalars())
        for chunk in _chunks(written):
            self.c.execute(delete(_countries).where(_countries.c.registry_id.in_(chunk)))
        countries = [{"registry_id": i, "country": code} for i in written for code in set(rows[i].trial.countries)]
        if countries:
            self.c.execute(insert(_countries), countries)
        inserted = sum(1 for i in written if i not in stored)
        return UpsertCounts(inserted=inserted, updated=len(written) - inserted, kept=len(ids) - len(written))

    def _with_countries(self, query: Select[Any]) -> list[ClassifiedTrial]:
        rows = self.c.execute(query).all()
        if not rows:
            return []
        ids = [row.registry_id for row in rows]
        countries: dict[str, list[str]] = defaultdict(list)
        listed = select(_countries.c.registry_id, _countries.c.country).where(_countries.c.registry_id.in_(ids))
        for registry_id, country in self.c.execute(listed.order_by(_countries.c.registry_id, _countries.c.country)):
            countries[registry_id].append(country)
        return [_classified(row, countries.get(row.registry_id, ())) for row in rows]

    def load_classified_trials(self) -> Iterator[ClassifiedTrial]:
        after = ""
        while True:
            query = select(_trials).where(_trials.c.registry_id > after).order_by(_trials.c.registry_id).limit(PAGE)
            page = self._with_countries(query)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].trial.registry_id

    def count(self) -> int:
        return int(self.c.execute(select(func.count()).select_from(_trials)).scalar_one())

    def get(self, registry_id: str) -> ClassifiedTrial | None:
        found = self._with_countries(select(_trials).where(_trials.c.registry_id == registry_id))
        return found[0] if found else None

    def search(
        self, *, country: str | None = None, modality: Modality | None = None, limit: int = 100, offset: int = 0
    ) -> list[ClassifiedTrial]:
        query = select(_trials).order_by(_trials.c.registry_id).limit(limit).offset(offset)
        if country is not None:
            with_site = select(_countries.c.registry_id).where(_countries.c.country == country.upper())
            query = query.where(_trials.c.registry_id.in_(with_site))
        if modality is not None:
            query = query.where(_trials.c.modality == modality.value)
        return self._with_countries(query)

    def imported_at(self, registry_id: str) -> datetime | None:
        query = select(_trials.c.imported_at).where(_trials.c.registry_id == registry_id)
        return self.c.execute(query).scalar_one_or_none()
