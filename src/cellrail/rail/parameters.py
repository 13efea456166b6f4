"""Sourced parameters of the rail, read once from package data (each value's source stands beside it there)."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from importlib import resources

import yaml

from cellrail.rail.network import ColdChain


@cache
def holding_limits() -> dict[ColdChain, timedelta]:
    """How long collected cells may wait before manufacturing starts, by cold chain (data/holding_limits.yaml)."""
    text = resources.files("cellrail.rail").joinpath("data/holding_limits.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {chain: timedelta(hours=float(data[chain.value]["hours"])) for chain in ColdChain}
