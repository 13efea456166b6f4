"""One entry point for every registry format: ``read_records(path)`` finds the format and streams the records.

A path may be an API v2 study JSON (one study or a ``{"studies": [...]}`` page), a ZIP of such files, a classic
ClinicalTrials.gov CSV export, a ONC CAR-T monitor ``trials.csv``, or a directory holding any of these (walked
in the file system's order, never listed whole: memory does not grow with the number of files). Bad records
come out as ``Rejected`` between the good ones; a path that is not a known format at all is an ``InvalidInput``
naming it.
"""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.landscape.importers import ctgov_classic_csv, ctgov_v2, ptjeong_csv
from cellrail.landscape.importers.base import Rejected
from cellrail.landscape.model import Trial

__all__ = ["Rejected", "check_path", "detect_format", "read_records"]

Record = Trial | Rejected


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def detect_format(path: Path) -> str | None:
    """The importer's source name for a file ('ctgov-v2-json', ...), 'ptjeong-sites' for the monitor's site list
    (read together with its trials.csv), or None when the file is none of them."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return ctgov_v2.SOURCE
    if suffix == ".zip":
        return ctgov_v2.SOURCE + "-zip"
    if suffix == ".csv":
        header = _csv_header(path)
        if ctgov_classic_csv.HEADER_MARK in header:
            return ctgov_classic_csv.SOURCE
        if ptjeong_csv.is_trials_header(header):
            return ptjeong_csv.SOURCE
        if ptjeong_csv.is_sites_header(header):
            return "ptjeong-sites"
    return None


UNKNOWN_FORMAT = "not a known registry format (API v2 .json or .zip, classic CSV export, monitor trials.csv)"


def check_path(path: Path | str) -> Problem | None:
    """Why ``path`` cannot be imported (missing, or a named file of no known format), or None. Reads at most a CSV
    header, so every path of an import can be checked before anything is written. A directory is only checked to
    exist: its files are detected as they are walked, and files of unknown formats in it are skipped."""
    path = Path(path)
    if path.is_dir():
        return None
    if not path.is_file():
        return Problem("path", "no such file or directory", str(path))
    kind = detect_format(path)
    if kind == "ptjeong-sites":
        return Problem("path", "a monitor sites.csv is read with its trials.csv: give that", str(path))
    if kind is None:
        return Problem("path", UNKNOWN_FORMAT, str(path))
    if kind == ctgov_v2.SOURCE + "-zip" and not zipfile.is_zipfile(path):
        return Problem("path", "named .zip but not a readable ZIP archive", str(path))
    return None


def _read_file(path: Path, *, named: bool) -> Iterator[Record]:
    kind = detect_format(path)
    if kind == ctgov_v2.SOURCE:
        yield from ctgov_v2.read_file(path, strict=named)
    elif kind == ctgov_v2.SOURCE + "-zip":
        yield from ctgov_v2.read_zip(path)
    elif kind == ctgov_classic_csv.SOURCE:
        yield from ctgov_classic_csv.read_file(path)
    elif kind == ptjeong_csv.SOURCE:
        yield from ptjeong_csv.read_file(path)
    elif named and kind == "ptjeong-sites":
        raise InvalidInput([Problem("path", "a monitor sites.csv is read with its trials.csv: give that", str(path))])
    elif named:
        raise InvalidInput([Problem("path", UNKNOWN_FORMAT, str(path))])


def _walk(directory: str) -> Iterator[Record]:
    """Records of the files under ``directory`` as the file system lists them, streamed (a sorted listing would
    hold every name). Study JSON files, the bulk of a download, go straight to the decoder."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path)
            elif entry.name.lower().endswith(".json") and entry.is_file():
                with open(entry.path, "rb") as handle:
                    raw = handle.read()
                yield from ctgov_v2.read_bytes(raw, entry.path, strict=False)
            elif entry.is_file():
                yield from _read_file(Path(entry.path), named=False)


def read_records(path: Path | str) -> Iterator[Record]:
    """Stream the trials (and rejections) of a file or directory, one record in memory at a time."""
    path = Path(path)
    if path.is_dir():
        yield from _walk(str(path))
    elif path.is_file():
        yield from _read_file(path, named=True)
    else:
        raise InvalidInput([Problem("path", "no such file or directory", str(path))])
