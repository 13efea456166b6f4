"""The figures every benchmark prints: each value beside its bare baseline from the same run, the ratio, the target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    target: float | None
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        """Share of the bare baseline reached (1.00 = no overhead), for rates and for times alike."""
        return self.value / self.baseline_value if self.higher_is_better else self.baseline_value / self.value

    @property
    def met(self) -> bool:
        if self.target is None:
            return True
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def report(
    console: Console, title: str, figures: Sequence[Figure], header: Sequence[str], notes: Sequence[str]
) -> None:
    for line in header:
        console.print(line)
    table = Table(title=title)
    for column in ("figure", "value", "baseline", "baseline value", "ratio", "target", "met"):
        table.add_column(column, justify="left" if column in ("figure", "baseline", "met") else "right")
    for f in figures:
        digits = ",.0f" if f.higher_is_better else ",.2f"
        value, base = f"{f.value:{digits}} {f.unit}", f"{f.baseline_value:{digits}} {f.unit}"
        if f.target is None:
            target, met = "-", "-"
        else:
            target = f"{'≥' if f.higher_is_better else '≤'} {f.target:,.0f}"
            met = "yes" if f.met else "NO"
        table.add_row(f.name, value, f.baseline, base, f"{f.ratio:.2f}", target, met)
    console.print(table)
    for line in notes:
        console.print(line)
