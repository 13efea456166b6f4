"""Registry analytics, read-only: stored trials and the trial-start tables of the landscape report.

Who may read: every authenticated user, whatever the role. These are public registry records (ClinicalTrials.gov)
and counts over them, not patient data and not the network's orders, so no role or node restriction applies;
a token is still required, like every other route, so that the API has one rule for callers.
The numbers are the same as in `cellrail landscape report` (both use cellrail.landscape.analytics): the start,
growth, sponsor and phase tables count cell and gene therapy trials (classified ex vivo or in vivo) and give the
number of stored trials left out as `not_cgt`; the modality split counts every trial, unclassified included.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cellrail.api.auth import Actor, AppClock, Uow
from cellrail.api.routers import AUTHENTICATED
from cellrail.api.schemas import ErrorAnswer
from cellrail.kernel.errors import InvalidInput, NotFound
from cellrail.landscape import analytics as a
from cellrail.landscape.model import ClassifiedTrial, DateKind, DatePrecision, Modality
from cellrail.landscape.report import source_line

router = APIRouter(tags=["landscape"])
NCT = r"^NCT\d{8}$"
RowT = TypeVar("RowT", bound=BaseModel)


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class InterventionView(_View):
    type: str
    name: str


class ClassificationView(_View):
    modality: Modality
    platform: str | None
    cell_source: str | None
    rule: str = Field(description="The rule that decided: a rule id of modality_rules.yaml, or 'upstream:<value>'")


class TrialView(_View):
    registry_id: str
    title: str
    phases: list[str]
    overall_status: str | None
    start_date: date | None
    start_precision: DatePrecision | None
    start_kind: DateKind
    start_status: a.StartStatus
    countries: list[str] = Field(description="ISO 3166-1 alpha-2 codes")
    lead_country: str | None
    sponsor: str | None
    sponsor_class: str | None
    interventions: list[InterventionView]
    conditions: list[str]
    upstream_product_type: str | None
    target: str | None
    source: str
    snapshot: date | None
    classification: ClassificationView

    @classmethod
    def of(cls, item: ClassifiedTrial, as_of: date) -> TrialView:
        t = item.trial
        return cls.model_validate(
            {
                **{k: getattr(t, k) for k in t.__dataclass_fields__},
                "interventions": [InterventionView.model_validate(i) for i in t.interventions],
                "start_status": a.start_status(t, as_of),
                "classification": ClassificationView.model_validate(item.classification),
            }
        )


class StartsRowView(_View):
    geography: str = Field(description="ISO alpha-2 code, 'EU27', 'ALL' or 'not stated'")
    name: str
    aggregate: bool = Field(description="True for EU27 and ALL, which count each trial once")
    year: int | None
    status: a.StartStatus
    trials: int


class StartsAnswer(BaseModel):
    by: str
    modality: Modality | None
    convention: str
    source: str
    not_cgt: int = Field(description="Stored trials not classified as CGT, left out of the rows")
    rows: list[StartsRowView]


class ModalityRowView(_View):
    year: int | None
    status: a.StartStatus
    modality: Modality
    trials: int


class MixRowView(_View):
    geography: str
    group: str
    trials: int
    share: float


class TableAnswer(BaseModel, Generic[RowT]):
    convention: str
    source: str
    not_cgt: int | None = Field(
        None, description="Stored trials not classified as CGT, left out of the rows (None: they are in the rows)"
    )
    rows: list[RowT]


class GrowthRowView(_View):
    geography: str
    year: int
    starts: int
    previous: int
    change: float | None


class CagrView(_View):
    geography: str
    first_year: int
    last_year: int
    first_starts: int
    last_starts: int
    cagr: float | None


class GrowthAnswer(BaseModel):
    convention: str
    source: str
    not_cgt: int = Field(description="Stored trials not classified as CGT, left out of the counts")
    cagr: CagrView
    year_on_year: list[GrowthRowView]


class View(StrEnum):
    COUNTRY = "country"
    LEAD_COUNTRY = "lead_country"


CONVENTIONS = {
    View.COUNTRY: "Per-country view: a trial counts once for each of its countries; EU27 and ALL count it once.",
    View.LEAD_COUNTRY: "Lead-country view: each trial counts once, for its lead country.",
}
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorAnswer, "description": "No stored trial with this registry id"}
}


CGT = " Cell and gene therapy trials only (classified ex vivo or in vivo); `not_cgt` counts the others."


def _all(uow: Uow) -> list[ClassifiedTrial]:
    return list(uow.landscape.load_classified_trials())


def _cgt(uow: Uow, modality: Modality | None = None) -> tuple[list[ClassifiedTrial], int]:
    """The CGT trials (of ``modality`` when given) and how many stored trials are not classified as CGT."""
    every = _all(uow)
    cgt = a.cgt_only(every)
    return [t for t in cgt if modality is None or t.classification.modality == modality], len(every) - len(cgt)


@router.get(
    "/landscape/trials/{registry_id}",
    summary="One stored trial with its classification and the rule that decided it",
    responses={**AUTHENTICATED, **NOT_FOUND},
)
def trial(uow: Uow, actor: Actor, clock: AppClock, registry_id: Annotated[str, Path(pattern=NCT)]) -> TrialView:
    found = uow.landscape.get(registry_id)
    if found is None:
        raise NotFound(f"no stored trial {registry_id}")
    return TrialView.of(found, clock.now().date())


@router.get(
    "/landscape/trials",
    summary="Stored trials in registry-id order, optionally with a site in a country or of a modality",
    responses=AUTHENTICATED,
)
def trials(
    uow: Uow,
    actor: Actor,
    clock: AppClock,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="ISO alpha-2 code")] = None,
    modality: Modality | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TrialView]:
    found = uow.landscape.search(country=country, modality=modality, limit=limit, offset=offset)
    today = clock.now().date()
    return [TrialView.of(t, today) for t in found]


@router.get(
    "/landscape/starts",
    summary="Trial starts per geography, year and status (actual, estimated, not stated)",
    responses=AUTHENTICATED,
)
def starts(
    uow: Uow, actor: Actor, clock: AppClock, by: View = View.COUNTRY, modality: Modality | None = None
) -> StartsAnswer:
    items, not_cgt = _cgt(uow, modality)
    count = a.starts_by_country if by is View.COUNTRY else a.starts_by_lead_country
    rows = [StartsRowView.model_validate(r) for r in count(items, clock.now().date())]
    return StartsAnswer(
        by=by.value,
        modality=modality,
        convention=CONVENTIONS[by] + CGT,
        source=source_line(items),
        not_cgt=not_cgt,
        rows=rows,
    )


@router.get(
    "/landscape/modality-split", summary="Ex vivo vs in vivo per start year and status", responses=AUTHENTICATED
)
def modality_split(uow: Uow, actor: Actor, clock: AppClock) -> TableAnswer[ModalityRowView]:
    items = _all(uow)
    rows = [ModalityRowView.model_validate(r) for r in a.modality_split(items, clock.now().date())]
    convention = "Each stored trial once; 'unclassified' rows are the trials not classified as CGT."
    return TableAnswer[ModalityRowView](convention=convention, source=source_line(items), rows=rows)


@router.get(
    "/landscape/sponsor-mix",
    summary="Industry vs academic / hospital lead sponsors for ALL, CN, US and EU27",
    responses=AUTHENTICATED,
)
def sponsor_mix(uow: Uow, actor: Actor) -> TableAnswer[MixRowView]:
    items, not_cgt = _cgt(uow)
    rows = [MixRowView.model_validate(r) for r in a.sponsor_mix(items)]
    convention = (
        "Registry lead-sponsor class: INDUSTRY vs all others (academic / hospital). " + CONVENTIONS[View.COUNTRY] + CGT
    )
    return TableAnswer[MixRowView](convention=convention, source=source_line(items), not_cgt=not_cgt, rows=rows)


@router.get("/landscape/phase-mix", summary="Trials by registry phase", responses=AUTHENTICATED)
def phase_mix(uow: Uow, actor: Actor) -> TableAnswer[MixRowView]:
    items, not_cgt = _cgt(uow)
    rows = [MixRowView.model_validate(r) for r in a.phase_mix(items)]
    return TableAnswer[MixRowView](
        convention="Each trial once." + CGT, source=source_line(items), not_cgt=not_cgt, rows=rows
    )


@router.get(
    "/landscape/growth",
    summary="Year-on-year change and CAGR of actual starts in a geography over a window of years",
    responses=AUTHENTICATED,
)
def growth(
    uow: Uow,
    actor: Actor,
    clock: AppClock,
    first: Annotated[int, Query(ge=1990, le=2100)],
    last: Annotated[int, Query(ge=1990, le=2100)],
    geography: Annotated[str, Query(pattern=r"^([A-Z]{2}|EU27|ALL)$")] = a.ALL,
) -> GrowthAnswer:
    if last <= first:
        raise InvalidInput.one("query.last", "must be after `first`")
    items, not_cgt = _cgt(uow)
    series = a.yearly(a.starts_by_country(items, clock.now().date()), geography)
    return GrowthAnswer(
        convention="Actual starts only. " + CONVENTIONS[View.COUNTRY] + CGT,
        source=source_line(items),
        not_cgt=not_cgt,
        cagr=CagrView.model_validate(a.cagr(geography, series, first, last)),
        year_on_year=[GrowthRowView.model_validate(r) for r in a.year_on_year(geography, series, first + 1, last)],
    )
