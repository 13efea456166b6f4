"""What one replication of the engine returns: plain arrays, no SQLAlchemy or Pydantic, so that thousands of
replications can be summarized, compared and shipped between processes (or Ray workers) cheaply.

Times are days since the start of the simulation; NaN means "did not happen". Patients who arrived before
``warmup_days`` or after ``horizon_days - cooldown_days`` are simulated (they load the network) but excluded from
statistics by the metrics: the first because the network was still filling up, the last because they could not
finish their journey before the horizon (counting them would mix censoring into the shares).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray


class Outcome(IntEnum):
    """How a patient's journey ended by the end of the horizon."""

    TREATED = 0  # infused
    LOST_WAITING = 1  # died or became ineligible before infusion (the dropout hazard)
    MANUFACTURING_FAILURE = 2  # every allowed manufacturing attempt was out of specification
    IN_PROGRESS = 3  # still on the way when the horizon ended (censored)


class ResourceKind(IntEnum):
    """The capacity-limited resources the twin tracks, one row each in the daily series."""

    APHERESIS = 0  # apheresis chairs at a hospital
    MANUFACTURING = 1  # manufacturing units (slots) of a platform at a site
    INFUSION = 2  # infusion beds at a hospital


@dataclass(frozen=True)
class RunOutput:
    """One replication: per-patient records (length P) and per-resource daily series (R resources x D days)."""

    seed: int
    horizon_days: float
    warmup_days: float
    hospitals: tuple[str, ...]  # node ids; ``hospital`` indexes this
    sites: tuple[str, ...]  # manufacturing node ids; ``site`` indexes this
    # per patient
    hospital: NDArray[np.int32]
    arrival: NDArray[np.float64]  # referral accepted: the decision to treat
    apheresis: NDArray[np.float64]  # end of the (first) collection: the "vein" of vein-to-vein
    site: NDArray[np.int32]  # site of the last manufacturing run, -1 if none
    manufacture_start: NDArray[np.float64]  # start of the first manufacturing run
    release: NDArray[np.float64]  # QC release of the product that was (or will be) infused
    infusion: NDArray[np.float64]  # the "vein" at the other end
    ended: NDArray[np.float64]  # infusion, loss or final failure; NaN while in progress
    attempts: NDArray[np.int32]  # manufacturing runs started (1 + remanufactures)
    outcome: NDArray[np.int8]  # Outcome
    bridged: NDArray[np.bool_]  # received bridging therapy while waiting
    transport_cost: NDArray[np.float64]  # all shipments made for this patient, in the scenario's currency
    bed_days: NDArray[np.float64]  # inpatient days at the infusing hospital
    # per resource and simulated day: time averages over the day (area under the curve / day length)
    resource_node: tuple[str, ...]  # node id of each resource row
    resource_kind: NDArray[np.int8]  # ResourceKind of each row
    capacity: NDArray[np.int32]  # servers (chairs, units, beds) of each row
    busy: NDArray[np.float64]  # (R, D) time-average servers in use during day d
    queue: NDArray[np.float64]  # (R, D) time-average patients waiting for that resource during day d
    # added by the engine: the patient's number within its hospital (referral order); with ``hospital`` it names
    # the same patient in two scenarios run with common random numbers
    number: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    # referrals in the last ``cooldown_days`` before the horizon are simulated but not counted
    cooldown_days: float = 0.0

    @property
    def counted_window_days(self) -> float:
        """Length of the referral window whose patients are counted: [warm-up, horizon - cool-down]."""
        return max(self.horizon_days - self.cooldown_days - self.warmup_days, 0.0)

    @property
    def patients(self) -> int:
        return int(self.hospital.shape[0])

    def counted(self) -> NDArray[np.bool_]:
        """Patients that enter the statistics: those referred in [warm-up, horizon - cool-down]."""
        return np.asarray((self.arrival >= self.warmup_days) & (self.arrival <= self.horizon_days - self.cooldown_days))
