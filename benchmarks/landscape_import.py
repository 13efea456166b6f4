"""Landscape import throughput and memory: API v2 study files -> classified trials in a SQLite store.

    python benchmarks/landscape_import.py [--records N] [--batch B] [--dir DIR]

Generates a directory of N API v2 study JSON files: the structure and every other module from the two real
records in tests/data/ctgov/api-v2-samples (``resultsSection`` dropped: most cell and gene therapy trials have
posted none), each with a new NCT id, a random start date of day, month or year precision, ACTUAL or ESTIMATED,
and the title, conditions, intervention names (typed BIOLOGICAL), countries (spelt as the API spells them) and
number of sites of a random real trial of the ONC CAR-T monitor snapshot, so that the classifier and the
country tables see the trials a landscape import really holds. Then:

(a) imports them with ``landscape.services.import_paths`` (stream, decode, classify, upsert in batches of B, one
    transaction each) into a file SQLite store with the product's durability settings, against the bare parse
    floor measured in the same run: reading every file and decoding it with msgspec into the importer's own
    Structs (orjson's untyped decode of the same files is printed as a second reference);
(b) the importer alone (``read_records``, no classification, no store) against the same floor;
(c) the same import with the classifier replaced by a constant (a fresh store), which splits (a) into the
    classifier's cost (``landscape.classify``, rules in data/modality_rules.yaml) and the importer's and store's;
(d) memory: the resident set size after the first 10% of records and after all of them (sampled at each batch
    commit); flat when memory does not grow with the number of records.
(e) the same files as one ZIP (stored, not compressed; zipping is not timed): the import's resident set at 10%
    and 100% of the records, and the memory ``zipfile`` holds for the archive's central directory (traced with
    tracemalloc when the archive is opened), which grows with the number of members.

The process is pinned to one core where the OS allows it. Generation is not timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sqlite3
import tempfile
import time
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson
from rich.console import Console

from cellrail.landscape.countries import country_code, country_name
from cellrail.landscape.importers import read_records
from cellrail.landscape.importers.ctgov_v2 import _Study
from cellrail.landscape.model import Classification, Modality, Trial
from cellrail.landscape.services import ImportResult, import_paths
from cellrail.store.engine import open_store
from cellrail.store.uow import SqlUnitOfWork
from machine import cpu_model, pin_to_one_core
from reporting import Figure, report

TARGET = 5_000.0  # records/s end to end (issue target)
CONSTANT = Classification(Modality.UNCLASSIFIED, None, None, "benchmark:constant")
SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "ctgov" / "api-v2-samples"
MONITOR = SAMPLES.parent / "ptjeong-onc-car-t" / "2026-08-22"


@dataclass(frozen=True)
class Profile:
    """What a generated record takes from one real monitor row: its texts, countries and number of sites."""

    title: str
    conditions: list[str]
    interventions: list[str]
    countries: list[str]  # as the API v2 spells them
    sites: int


def profiles() -> list[Profile]:
    with (MONITOR / "sites.csv").open(encoding="utf-8", newline="") as handle:
        sites = Counter(row["NCTId"] for row in csv.DictReader(handle))
    found = []
    with (MONITOR / "trials.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            names = [n for n in row["Countries"].split("|") if n]
            countries = [country_name(country_code(n) or n) for n in names]
            found.append(
                Profile(
                    title=row["BriefTitle"],
                    conditions=[c for c in row["Conditions"].split("|") if c],
                    interventions=[i for i in row["Interventions"].split("|") if i],
                    countries=countries,
                    sites=max(len(countries), sites[row["NCTId"]]),
                )
            )
    return found


def templates() -> list[dict[str, Any]]:
    found = []
    for path in sorted(SAMPLES.glob("aact-fixture-*.json")):
        study = json.loads(path.read_text(encoding="utf-8"))
        study.pop("resultsSection", None)
        study.pop("documentSection", None)
        found.append(study)
    return found


def generate(directory: Path, count: int, seed: int = 2026) -> int:
    """Write ``count`` study files, 1,000 per sub-directory as a bulk download unpacks; returns the bytes written."""
    rng = random.Random(seed)
    bases = templates()
    rows = profiles()
    written = 0
    for number in range(count):
        study = bases[number % len(bases)]
        real = rows[rng.randrange(len(rows))]
        protocol = study["protocolSection"]
        real_sites = protocol["contactsLocationsModule"]["locations"]
        locations = [
            dict(real_sites[i % len(real_sites)], country=real.countries[i % len(real.countries)])
            for i in range(real.sites if real.countries else 0)
        ]
        year, month, day = rng.randint(2005, 2027), rng.randint(1, 12), rng.randint(1, 28)
        start = rng.choice([f"{year}-{month:02d}-{day:02d}", f"{year}-{month:02d}", f"{year}"])
        nct = f"NCT{90_000_000 + number}"
        varied = {
            **study,
            "protocolSection": {
                **protocol,
                "identificationModule": {**protocol["identificationModule"], "nctId": nct, "briefTitle": real.title},
                "statusModule": {
                    **protocol["statusModule"],
                    "startDateStruct": {"date": start, "type": rng.choice(["ACTUAL", "ESTIMATED"])},
                },
                "conditionsModule": {**protocol["conditionsModule"], "conditions": real.conditions},
                "armsInterventionsModule": {
                    **protocol["armsInterventionsModule"],
                    "interventions": [{"type": "BIOLOGICAL", "name": name} for name in real.interventions],
                },
                "contactsLocationsModule": {**protocol["contactsLocationsModule"], "locations": locations},
            },
        }
        folder = directory / f"{number // 1000:04d}"
        if number % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps(varied)
        (folder / f"{nct}.json").write_bytes(data)
        written += len(data)
    return written


def files(directory: Path) -> Iterator[Path]:
    for folder in sorted(directory.iterdir()):
        yield from sorted(folder.iterdir())


def floor_msgspec(directory: Path) -> tuple[float, int]:
    decoder = msgspec.json.Decoder(_Study)
    started = time.perf_counter()
    decoded = sum(1 for path in files(directory) if decoder.decode(path.read_bytes()).protocolSection is not None)
    return time.perf_counter() - started, decoded


def floor_orjson(directory: Path) -> tuple[float, int]:
    started = time.perf_counter()
    decoded = sum(1 for path in files(directory) if "protocolSection" in orjson.loads(path.read_bytes()))
    return time.perf_counter() - started, decoded


def importer_only(directory: Path) -> tuple[float, int]:
    started = time.perf_counter()
    read = sum(1 for record in read_records(directory) if isinstance(record, Trial))
    return time.perf_counter() - started, read


def rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass(frozen=True)
class TimedImport:
    result: ImportResult
    seconds: float
    stored: int
    rss_before: float
    samples: list[tuple[int, float]]  # (records imported so far, resident MB) after each batch


def timed_import(
    database: Path, source: Path, batch: int, classify: Callable[[Trial], Classification] | None = None
) -> TimedImport:
    """One timed ``import_paths`` of ``source`` into a fresh SQLite store, sampling resident memory per batch."""
    engine = open_store(f"sqlite:///{database}")
    samples: list[tuple[int, float]] = []
    rss_before = rss_mb()
    options: dict[str, Any] = {} if classify is None else {"classify": classify}
    started = time.perf_counter()
    result = import_paths(
        lambda: SqlUnitOfWork(engine),
        [source],
        batch_size=batch,
        progress=lambda n: samples.append((n, rss_mb())),
        **options,
    )
    seconds = time.perf_counter() - started
    with SqlUnitOfWork(engine, write=False) as uow:
        stored = uow.landscape.count()
    engine.dispose()
    return TimedImport(result, seconds, stored, rss_before, samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000, help="study files to generate (default 100,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="trials per transaction (default 1,000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files and the store (default: temp)")
    args = parser.parse_args(argv)
    pinned = pin_to_one_core()
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    with tempfile.TemporaryDirectory(prefix="cellrail-bench-", dir=args.dir) as workdir:
        studies = Path(workdir) / "studies"
        console.print(f"generating {args.records:,} API v2 study files ...")
        started = time.perf_counter()
        volume = generate(studies, args.records)
        generated = time.perf_counter() - started

        console.print("(b) importer alone and the parse floors ...")
        floor_seconds, floor_count = min(floor_msgspec(studies) for _ in range(2))  # best of 2: shared cores
        orjson_seconds, _ = floor_orjson(studies)
        reader_seconds, reader_count = min(importer_only(studies) for _ in range(2))
        assert floor_count == reader_count == args.records, (floor_count, reader_count)

        console.print(f"(a) import_paths into SQLite, batches of {args.batch:,} ...")
        tenth = max(1, args.records // 10)
        classified = timed_import(Path(workdir) / "cellrail.db", studies, args.batch)
        assert classified.result.rejected == [], classified.result.rejected[:3]
        assert classified.result.imported == classified.stored == args.records, classified.result
        import_seconds, samples, rss_before = classified.seconds, classified.samples, classified.rss_before
        console.print("(c) the same without classification ...")
        unclassified = timed_import(Path(workdir) / "unclassified.db", studies, args.batch, lambda _trial: CONSTANT)
        assert unclassified.result.imported == args.records, unclassified.result
        unclassified_seconds = unclassified.seconds
        console.print("(e) the same files as one ZIP ...")
        archive = Path(workdir) / "studies.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
            for path in files(studies):
                z.write(path, path.name)
        tracemalloc.start()
        with zipfile.ZipFile(archive) as z:
            directory_bytes, members = tracemalloc.get_traced_memory()[0], len(z.infolist())
        tracemalloc.stop()
        zipped = timed_import(Path(workdir) / "zipped.db", archive, args.batch)
        assert zipped.result.imported == args.records, zipped.result
        zip_seconds, zip_samples, zip_before = zipped.seconds, zipped.samples, zipped.rss_before
        zip_tenth = next(mb for n, mb in zip_samples if n >= tenth)
        zip_end = zip_samples[-1][1]
        at_tenth = next(mb for n, mb in samples if n >= tenth)
        at_end = samples[-1][1]
        peak = max(mb for _, mb in samples)

    figures = [
        Figure(
            f"(a) import_paths, {args.records:,} files -> SQLite",
            args.records / import_seconds,
            "records/s",
            "read + msgspec typed decode",
            args.records / floor_seconds,
            TARGET,
        ),
        Figure(
            "(b) read_records alone (no classify, no store)",
            args.records / reader_seconds,
            "records/s",
            "read + msgspec typed decode",
            args.records / floor_seconds,
            None,
        ),
        Figure(
            "(c) import_paths, classification skipped",
            args.records / unclassified_seconds,
            "records/s",
            "read + msgspec typed decode",
            args.records / floor_seconds,
            None,
        ),
    ]
    classify_ms = (import_seconds - unclassified_seconds) / args.records * 1e3
    header = [
        f"CellRail landscape import benchmark: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"msgspec {msgspec.__version__}, {cpu_model()}, nproc {os.cpu_count()}, {pinned}",
        f"{args.records:,} files, {volume / 1e6:,.0f} MB ({volume / args.records / 1e3:,.1f} kB per record), "
        f"generated in {generated:.1f} s (not timed).",
    ]
    notes = [
        f"The classifier takes {classify_ms:.3f} ms per record ((a) minus (c)), "
        f"{classify_ms / (import_seconds / args.records * 1e3):.0%} of the import's time.",
        f"(d) memory (resident set): {rss_before:,.0f} MB before the import, {at_tenth:,.0f} MB after "
        f"{tenth:,} records, {at_end:,.0f} MB after {args.records:,} records (peak sampled {peak:,.0f} MB): "
        f"growth from 10% to 100% of the records {at_end - at_tenth:+,.1f} MB.",
        f"(e) ZIP of the same files: {args.records / zip_seconds:,.0f} records/s; resident set {zip_before:,.0f} MB "
        f"before, {zip_tenth:,.0f} MB after {tenth:,} records, {zip_end:,.0f} MB after {args.records:,} "
        f"({zip_end - zip_tenth:+,.1f} MB from 10% to 100%); zipfile's central directory holds "
        f"{directory_bytes / 1e6:,.1f} MB for {members:,} members "
        f"({directory_bytes / members / 1e3:.2f} kB per member, O(members): unzip the full registry to a directory).",
        f"Reference: orjson untyped decode of the same files {args.records / orjson_seconds:,.0f} records/s "
        f"(the typed msgspec floor is {orjson_seconds / floor_seconds:.2f}x as fast).",
        f"Import result: {classified.result.imported:,} new, {classified.result.updated:,} updated, "
        f"{classified.result.rejected_total} rejected.",
        "ratio = value / baseline: the share of the bare parse floor the whole import reaches.",
    ]
    report(console, "Landscape import, API v2 JSON -> SQLite (WAL, synchronous=FULL), one core", figures, header, notes)
    return 0 if all(f.met for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
