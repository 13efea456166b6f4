"""What the landscape's use cases need from a store, as protocols: import and analytics never import the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol

from cellrail.landscape.model import ClassifiedTrial, Modality


@dataclass(frozen=True)
class UpsertCounts:
    """How many trials of a batch were new, how many replaced a stored trial with the same registry id, and how many
    were not written because the stored record is newer (a later snapshot from another source)."""

    inserted: int
    updated: int
    kept: int = 0


class LandscapeRepository(Protocol):
    def upsert_trials(self, batch: Sequence[ClassifiedTrial], imported_at: datetime) -> UpsertCounts:
        """Insert new trials, replace stored ones with the same registry id (the last of a batch wins) unless the
        stored one is newer: from another source with a later snapshot (no snapshot counts as the oldest)."""
        ...

    def load_classified_trials(self) -> Iterator[ClassifiedTrial]:
        """Every stored trial in registry-id order, read in pages so memory does not grow with the store."""
        ...

    def count(self) -> int: ...
    def get(self, registry_id: str) -> ClassifiedTrial | None: ...
    def search(
        self, *, country: str | None = None, modality: Modality | None = None, limit: int = 100, offset: int = 0
    ) -> list[ClassifiedTrial]:
        """Trials in registry-id order, optionally those with a site in ``country`` (ISO alpha-2) or of a modality."""
        ...

    def imported_at(self, registry_id: str) -> datetime | None: ...


class LandscapeUnitOfWork(Protocol):
    """One transaction: a batch of trials commits together or not at all."""

    @property
    def landscape(self) -> LandscapeRepository: ...

    def __enter__(self) -> LandscapeUnitOfWork: ...
    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class LandscapeUnitOfWorkFactory(Protocol):
    def __call__(self) -> LandscapeUnitOfWork: ...
