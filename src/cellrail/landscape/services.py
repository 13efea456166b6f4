"""Import registry files into the landscape store: stream, classify, upsert in batches.

Each batch is one transaction, so a crash leaves whole batches or none of one; the upsert is keyed by registry
id, so running the same import again changes nothing but ``imported_at`` (and the rows whose source changed); an
older snapshot from another source never overwrites a newer stored record (it is counted as ``kept_newer``).
Memory holds one batch of trials plus the first 1,000 rejections (the others are counted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from cellrail.kernel.clock import Clock, SystemClock
from cellrail.kernel.errors import InvalidInput
from cellrail.landscape.classify import classify as default_classify
from cellrail.landscape.importers import Rejected, check_path, read_records
from cellrail.landscape.model import Classification, ClassifiedTrial, Trial
from cellrail.landscape.ports import LandscapeUnitOfWorkFactory

DEFAULT_BATCH = 1000
KEPT_REJECTIONS = 1000  # rejections kept with their details; the rest are only counted (memory stays bounded)


@dataclass
class ImportResult:
    """``imported``: trials new to the store; ``updated``: stored trials replaced; ``kept_newer``: trials not written
    because the stored record is newer (another source with a later snapshot); ``by_source``: trials read per
    importer ('ctgov-v2-json', ...); ``rejected``: the first KEPT_REJECTIONS records skipped, each with file, line,
    id and reason; ``rejected_total``: how many were skipped in all."""

    imported: int = 0
    updated: int = 0
    kept_newer: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rejected_total: int = 0
    by_source: dict[str, int] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        return self.imported + self.updated


def import_paths(
    uow_factory: LandscapeUnitOfWorkFactory,
    paths: Iterable[Path | str],
    *,
    classify: Callable[[Trial], Classification] = default_classify,
    batch_size: int = DEFAULT_BATCH,
    clock: Clock | None = None,
    progress: Callable[[int], None] | None = None,
    snapshot: date | None = None,
) -> ImportResult:
    """Import every record under ``paths``; ``progress`` is called with the number of records read (good and
    rejected) after each batch. ``snapshot`` (the day the files were downloaded) is stored for records whose source
    gives none (the classic CSV export), so their past starts can count as actual.
    Every path is checked before anything is written: it must exist, and a named file
    must be of a known format (its CSV header is read); files inside a directory are detected as they are walked."""
    if batch_size < 1:
        raise InvalidInput.one("batch_size", "must be at least 1")
    path_list = [Path(p) for p in paths]
    problems = [problem for problem in map(check_path, path_list) if problem is not None]
    if problems:
        raise InvalidInput(problems)
    imported_at = (clock or SystemClock()).now()
    result = ImportResult()
    by_source: Counter[str] = Counter()
    batch: list[ClassifiedTrial] = []
    seen = 0

    def flush() -> None:
        with uow_factory() as uow:
            counts = uow.landscape.upsert_trials(batch, imported_at)
            uow.commit()
        result.imported += counts.inserted
        result.updated += counts.updated
        result.kept_newer += counts.kept
        batch.clear()
        if progress is not None:
            progress(seen)

    for path in path_list:
        for record in read_records(path):
            seen += 1
            if isinstance(record, Rejected):
                result.rejected_total += 1
                if len(result.rejected) < KEPT_REJECTIONS:
                    result.rejected.append(record)
                continue
            by_source[record.source] += 1
            if snapshot is not None and record.snapshot is None:
                record = replace(record, snapshot=snapshot)
            batch.append(ClassifiedTrial(record, classify(record)))
            if len(batch) >= batch_size:
                flush()
    if batch:
        flush()
    elif progress is not None:
        progress(seen)
    result.by_source = dict(by_source)
    return result


def describe(rejected: Sequence[Rejected], limit: int = 20, total: int | None = None) -> list[str]:
    """Lines for a user: the first ``limit`` rejections and how many more there were (of ``total``, when only the
    first ones were kept)."""
    total = len(rejected) if total is None else total
    lines = [str(r) for r in rejected[:limit]]
    shown = min(limit, len(rejected))
    if total > shown:
        lines.append(f"... and {total - shown:,} more rejected records")
    return lines
