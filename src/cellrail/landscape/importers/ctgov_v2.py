"""ClinicalTrials.gov API v2 study JSON: one record per file, a directory or ZIP of such files, or a paged
``{"studies": [...]}`` response.

Decoding is typed (msgspec Structs) and declares only the fields kept, so everything else, in particular
``centralContacts``, ``overallOfficials`` and each location's ``contacts``, is skipped by the parser and never
becomes a Python object. One file is decoded at a time; a page file holds at most one API page (the API caps a
page at 1,000 studies) and each study in it is decoded on its own, so one bad study rejects only itself.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import msgspec

from cellrail.landscape.importers.base import (
    RecordError,
    Rejected,
    country_codes,
    iso_date,
    lead_country,
    registry_id,
)
from cellrail.landscape.model import DateKind, DatePrecision, Intervention, Trial

SOURCE = "ctgov-v2-json"
_ID_IN_TEXT = re.compile(rb'"nctId"\s*:\s*"([^"\\]{1,32})"')
_KINDS = {"ACTUAL": DateKind.ACTUAL, "ESTIMATED": DateKind.ESTIMATED}


class _DateStruct(msgspec.Struct, gc=False):
    date: str | None = None
    type: str | None = None


class _Identification(msgspec.Struct, gc=False):
    nctId: str | None = None
    briefTitle: str | None = None
    officialTitle: str | None = None


class _Status(msgspec.Struct, gc=False):
    overallStatus: str | None = None
    startDateStruct: _DateStruct | None = None


class _Sponsor(msgspec.Struct, gc=False):
    name: str | None = None
    class_: str | None = msgspec.field(default=None, name="class")


class _Sponsors(msgspec.Struct, gc=False):
    leadSponsor: _Sponsor | None = None


class _Design(msgspec.Struct, gc=False):
    phases: list[str] = []


class _Conditions(msgspec.Struct, gc=False):
    conditions: list[str] = []


class _Intervention(msgspec.Struct, gc=False):
    type: str | None = None
    name: str | None = None


class _Arms(msgspec.Struct, gc=False):
    interventions: list[_Intervention] = []


class _Location(msgspec.Struct, gc=False):
    country: str | None = None  # facility, city and the location's contacts are not decoded


class _Locations(msgspec.Struct, gc=False):
    locations: list[_Location] = []  # centralContacts and overallOfficials are not decoded


class _Protocol(msgspec.Struct, gc=False):
    identificationModule: _Identification | None = None
    statusModule: _Status | None = None
    sponsorCollaboratorsModule: _Sponsors | None = None
    designModule: _Design | None = None
    conditionsModule: _Conditions | None = None
    armsInterventionsModule: _Arms | None = None
    contactsLocationsModule: _Locations | None = None


class _MiscInfo(msgspec.Struct, gc=False):
    versionHolder: str | None = None  # the registry's data version date: the snapshot


class _Derived(msgspec.Struct, gc=False):
    miscInfoModule: _MiscInfo | None = None


class _Study(msgspec.Struct, gc=False):
    protocolSection: _Protocol | None = None
    derivedSection: _Derived | None = None


class _File(msgspec.Struct, gc=False):
    """A single study, or an API page whose studies are decoded one by one."""

    protocolSection: _Protocol | None = None
    derivedSection: _Derived | None = None
    studies: list[msgspec.Raw] | None = None


_file_decoder = msgspec.json.Decoder(_File)
_study_decoder = msgspec.json.Decoder(_Study)


def _id_in(raw: bytes) -> str | None:
    found = _ID_IN_TEXT.search(raw)
    return found.group(1).decode("utf-8", "replace") if found else None


def _start(status: _Status | None) -> tuple[date | None, DatePrecision | None, DateKind]:
    struct = status.startDateStruct if status is not None else None
    if struct is None or not struct.date:
        return None, None, DateKind.UNKNOWN
    field = "protocolSection.statusModule.startDateStruct"
    start, precision = iso_date(struct.date, f"{field}.date")
    if struct.type is None:
        return start, precision, DateKind.UNKNOWN
    kind = _KINDS.get(struct.type)
    if kind is None:
        raise RecordError(f"{field}.type", f"{struct.type!r} is neither ACTUAL nor ESTIMATED")
    return start, precision, kind


def _snapshot(derived: _Derived | None) -> date | None:
    holder = derived.miscInfoModule.versionHolder if derived and derived.miscInfoModule else None
    if not holder:
        return None
    return iso_date(holder, "derivedSection.miscInfoModule.versionHolder")[0]


def to_trial(study: _Study | _File) -> Trial:
    """The normalized record of one decoded study; a RecordError names the field that prevents it."""
    protocol = study.protocolSection
    if protocol is None:
        raise RecordError("protocolSection", "required field is missing")
    ident = protocol.identificationModule
    nct = registry_id(ident.nctId if ident else None, "protocolSection.identificationModule.nctId")
    title = (ident.briefTitle or ident.officialTitle) if ident else None
    if not title:
        raise RecordError("protocolSection.identificationModule.briefTitle", "required field is missing")
    start, precision, kind = _start(protocol.statusModule)
    locations = protocol.contactsLocationsModule.locations if protocol.contactsLocationsModule else []
    countries, first = country_codes(
        (loc.country for loc in locations if loc.country), "protocolSection.contactsLocationsModule.locations.country"
    )
    lead = protocol.sponsorCollaboratorsModule.leadSponsor if protocol.sponsorCollaboratorsModule else None
    arms = protocol.armsInterventionsModule
    return Trial(
        registry_id=nct,
        title=title,
        phases=tuple(protocol.designModule.phases) if protocol.designModule else (),
        overall_status=protocol.statusModule.overallStatus if protocol.statusModule else None,
        start_date=start,
        start_precision=precision,
        start_kind=kind,
        countries=countries,
        lead_country=lead_country(countries, first),
        sponsor=lead.name if lead else None,
        sponsor_class=lead.class_ if lead else None,
        interventions=tuple(Intervention(i.type or "", i.name) for i in arms.interventions if i.name) if arms else (),
        conditions=tuple(protocol.conditionsModule.conditions) if protocol.conditionsModule else (),
        upstream_product_type=None,
        target=None,
        source=SOURCE,
        snapshot=_snapshot(study.derivedSection),
    )


def _reject(name: str, index: int, raw: bytes, error: Exception) -> Rejected:
    if isinstance(error, RecordError):
        reason = str(error)
    elif isinstance(error, msgspec.ValidationError):
        reason = f"wrong type: {error}"
    else:
        reason = f"not valid JSON: {error}"
    return Rejected(name, index, _id_in(raw), reason)


def read_bytes(raw: bytes, name: str, *, strict: bool = True) -> Iterator[Trial | Rejected]:
    """The trials of one JSON document (a study or a page of studies) named ``name`` in rejections.

    Not ``strict`` (files met while walking a directory): valid JSON that is not a study at all (no
    ``protocolSection`` and no ``studies``, or not an object) is skipped, as a metadata file next to the data is."""
    try:
        document = _file_decoder.decode(raw)
        if document.studies is None:
            if document.protocolSection is None and not strict:
                return
            yield to_trial(document)
            return
    except msgspec.ValidationError as error:
        if strict or " - at `$" in str(error):  # an error inside the document, not "not an object"
            yield _reject(name, 0, raw, error)
        return
    except (msgspec.DecodeError, RecordError) as error:
        yield _reject(name, 0, raw, error)
        return
    for index, study_raw in enumerate(document.studies):
        study_bytes = bytes(study_raw)
        try:
            yield to_trial(_study_decoder.decode(study_bytes))
        except (msgspec.DecodeError, RecordError) as error:
            yield _reject(name, index, study_bytes, error)


def read_file(path: Path, *, strict: bool = True) -> Iterator[Trial | Rejected]:
    yield from read_bytes(path.read_bytes(), str(path), strict=strict)


def read_zip(path: Path) -> Iterator[Trial | Rejected]:
    """Every ``*.json`` member of a ZIP in the archive's own order, one member's bytes in memory at a time.

    ``zipfile`` reads the whole central directory when it opens the archive and keeps one ZipInfo per member
    (about 0.6 KB each, ~350 MB for the 540,000 studies of a full registry download): that is O(members) and cannot
    be streamed with the standard library, so no second (sorted) copy is made here. For the full registry, unzip
    to a directory: a directory is walked without listing it whole (docs/landscape.md)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:  # met in a directory walk (named paths are checked before import): skip it
        yield Rejected(str(path), None, None, f"not a readable ZIP archive: {error}")
        return
    with archive:
        for member in archive.infolist():
            if not member.is_dir() and member.filename.lower().endswith(".json"):
                yield from read_bytes(archive.read(member), f"{path}!{member.filename}")
