"""Write what a twin run or comparison found: CSV files for analysts and one offline HTML page for planners.

Every chart carries what was run (scenario file, replications, seed, horizon) in its title, so a chart copied into
a slide still says where it came from. If offered demand exceeds capacity anywhere, the page opens with a warning.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from cellrail.reports.page import Report, Section, Table, render
from cellrail.twin.compare import Comparison, Difference
from cellrail.twin.metrics import COST_PARTS, HOSPITAL_METRICS, LABELS, METRICS, UNITS, vein_to_vein
from cellrail.twin.output import Outcome, ResourceKind, RunOutput
from cellrail.twin.replicate import Replications
from cellrail.twin.scenario import Scenario
from cellrail.twin.statistics import format_value, mean_ci

_OUTCOMES = (
    ("treated_share", "treated", "#2f855a"),
    ("lost_share", "lost while waiting", "#c53030"),
    ("failure_share", "manufacturing failure", "#dd6b20"),
    ("in_progress_share", "still in progress", "#a0aec0"),
)
_KINDS = {int(k): k.name.lower() for k in ResourceKind}
IN_PROGRESS_WARNING = 0.005  # counted patients should all finish (cool-down); above this, say the figures are biased


@dataclass(frozen=True)
class Run:
    """One scenario's replications with what the report needs to name it."""

    file: str
    scenario: Scenario
    result: Replications

    def what(self) -> str:
        s = self.scenario
        return (
            f"{Path(self.file).name} · {self.result.replications} replications · seed {self.result.seed} · "
            f"horizon {s.horizon_days:g} d (warm-up {s.warmup_days:g} d, cool-down {s.cooldown_days:g} d)"
        )

    def warnings(self) -> list[str]:
        found = [f"{Path(self.file).name}: {problem}" for problem in self.scenario.capacity_problems()]
        waiting = float(_nanmean(self.result.values("in_progress_share")))
        if waiting > IN_PROGRESS_WARNING:
            found.append(
                f"{Path(self.file).name}: {waiting:.1%} of counted patients are still in progress at the horizon "
                f"although they were referred at least cooldown_days ({self.scenario.cooldown_days:g} d) before it; "
                "their outcome is unknown, so shares, times and cost per treated patient are biased. "
                "Raise demand.cooldown_days (or horizon_days)."
            )
        return found

    def cost_note(self) -> str:
        """Which cost parts rest on assumed rates (the defaults' assumptions), in words."""
        assumed = [LABELS[part].replace("of which", "").strip() for part in self.scenario.assumed_cost_parts()]
        if not assumed:
            return f"{Path(self.file).name}: every cost rate was set in the scenario."
        return (
            f"{Path(self.file).name}: {', '.join(assumed)} use assumed rates (defaults.yaml, no published figure); "
            "manufacturing runs are priced from the i-SHIPMENT model's inputs unless the scenario sets them. Node "
            "fixed costs are charged by the share of each site's manufacturing capacity the network used."
        )

    def name_of(self, node: str) -> str:
        try:
            return str(self.scenario.network.node(node).name)
        except Exception:  # an id the network does not know: show the id
            return node


def _nanmean(values: np.ndarray[Any, np.dtype[np.float64]], axis: int | None = None) -> Any:
    """Mean without NaN; NaN, silently, where every value is NaN (e.g. a hospital that treated nobody)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _title(text: str, what: str) -> dict[str, Any]:
    return {"text": f"{text}<br><sup>{what}</sup>", "x": 0.0, "xanchor": "left"}


def _change(value: float, unit: str) -> str:
    """A difference: shares in percentage points, the rest in their unit."""
    if unit == "share" and math.isfinite(value):
        return f"{value * 100:.1f} pp"
    return format_value(value, unit)


# ---- CSV ------------------------------------------------------------------------------------------------------


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _f(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


def write_run_csv(run: Run, out: Path) -> list[Path]:
    """summary.csv, replications.csv, hospitals.csv, patients_replication0.csv, resources_daily.csv."""
    r = run.result
    files = [
        _write_csv(
            out / "summary.csv",
            ("metric", "label", "unit", "mean", "ci95_low", "ci95_high", "replications"),
            (
                (name, label.strip(), UNITS[name], *(_f(v) for v in mean_ci(r.values(name))[:3]), r.replications)
                for name, label, _ in METRICS
            ),
        ),
        _write_csv(
            out / "replications.csv",
            ("replication", "seed", *(name for name, _, _ in METRICS)),
            ([k, s.seed, *(_f(s.metrics[name]) for name, _, _ in METRICS)] for k, s in enumerate(r.summaries)),
        ),
    ]
    hospitals = r.summaries[0].hospitals
    means = {name: _nanmean(r.hospital_values(name), axis=0) for name in HOSPITAL_METRICS}
    files.append(
        _write_csv(
            out / "hospitals.csv",
            ("hospital", "name", *(f"{name}_mean" for name in HOSPITAL_METRICS)),
            (
                [h, run.name_of(h), *(_f(float(means[name][i])) for name in HOSPITAL_METRICS)]
                for i, h in enumerate(hospitals)
            ),
        )
    )
    files.append(_patients_csv(r.first, out / "patients_replication0.csv"))
    files.append(_resources_csv(r, out / "resources_daily.csv"))
    return files


def _patients_csv(o: RunOutput, path: Path) -> Path:
    counted = o.counted()
    number = o.number if o.number.size == o.patients else np.arange(o.patients)
    header = (
        "hospital", "number", "counted", "outcome", "arrival", "apheresis", "site", "manufacture_start", "release",
        "infusion", "ended", "vein_to_vein", "decision_to_infusion", "attempts", "bridged", "transport_cost",
        "bed_days",
    )  # fmt: skip
    rows = (
        [
            o.hospitals[o.hospital[i]],
            int(number[i]),
            bool(counted[i]),
            Outcome(int(o.outcome[i])).name.lower(),
            _f(o.arrival[i]),
            _f(o.apheresis[i]),
            o.sites[o.site[i]] if o.site[i] >= 0 else "",
            _f(o.manufacture_start[i]),
            _f(o.release[i]),
            _f(o.infusion[i]),
            _f(o.ended[i]),
            _f(o.infusion[i] - o.apheresis[i]),
            _f(o.infusion[i] - o.arrival[i]),
            int(o.attempts[i]),
            bool(o.bridged[i]),
            _f(o.transport_cost[i]),
            _f(o.bed_days[i]),
        ]
        for i in range(o.patients)
    )
    return _write_csv(path, header, rows)


def _resources_csv(r: Replications, path: Path) -> Path:
    o = r.first
    header = ("node", "kind", "capacity", "day", "busy_mean", "queue_mean", "utilisation_mean")
    rows = (
        [
            o.resource_node[i],
            _KINDS[int(o.resource_kind[i])],
            int(o.capacity[i]),
            d,
            _f(r.busy_mean[i, d]),
            _f(r.queue_mean[i, d]),
            _f(r.busy_mean[i, d] / o.capacity[i]) if o.capacity[i] > 0 else "",
        ]
        for i in range(len(o.resource_node))
        for d in range(r.busy_mean.shape[1])
    )
    return _write_csv(path, header, rows)


def write_comparison_csv(comparison: Comparison, out: Path) -> Path:
    header = (
        "metric", "label", "unit", "pairs", "mean_a", "mean_b", "difference_b_minus_a", "ci95_low", "ci95_high",
        "significant", "paired_half_width", "unpaired_half_width", "verdict",
    )  # fmt: skip
    rows = (
        [
            d.metric, LABELS[d.metric].strip(), UNITS[d.metric], d.n, _f(d.mean_a), _f(d.mean_b), _f(d.difference),
            _f(d.low), _f(d.high), d.significant, _f(d.half_width), _f(d.unpaired_half_width),
            d.verdict(comparison.a.currency),
        ]
        for d in comparison.differences
    )  # fmt: skip
    return _write_csv(out / "differences.csv", header, rows)


# ---- charts ---------------------------------------------------------------------------------------------------


def v2v_figure(runs: Sequence[Run], what: str) -> go.Figure:
    """Box plot of vein-to-vein days per hospital (replication 0's counted, treated patients)."""
    figure = go.Figure()
    for run in runs:
        o = run.result.first
        chosen = o.counted() & (o.outcome == Outcome.TREATED)
        names = [o.hospitals[h] for h in o.hospital[chosen]]  # node ids: short axis labels; names in the table
        figure.add_trace(go.Box(x=names, y=vein_to_vein(o), name=Path(run.file).stem, boxpoints=False))
    figure.update_layout(
        title=_title("Vein-to-vein days per hospital (replication 0, treated patients)", what),
        yaxis_title="days from end of apheresis to infusion",
        boxmode="group",
        height=480,
    )
    return figure


def _stacked_outcomes(x: Sequence[str], share: Callable[[str], Any], title: dict[str, Any], height: int) -> go.Figure:
    """One stacked bar per ``x``: the share of counted patients in each outcome (``share(metric)`` per x)."""
    figure = go.Figure()
    for metric, label, colour in _OUTCOMES:
        figure.add_trace(go.Bar(x=list(x), y=share(metric), name=label, marker_color=colour))
    figure.update_layout(title=title, barmode="stack", yaxis={"tickformat": ".0%", "range": [0, 1]}, height=height)
    return figure


def outcome_figure(runs: Sequence[Run], what: str) -> go.Figure:
    """Stacked shares of counted patients by outcome, network-wide, per scenario (mean over replications)."""
    return _stacked_outcomes(
        [Path(run.file).stem for run in runs],
        lambda metric: [float(_nanmean(run.result.values(metric))) for run in runs],
        _title("Share of counted patients by outcome (mean over replications)", what),
        420,
    )


def hospital_outcome_figure(run: Run, what: str) -> go.Figure:
    """Stacked shares of counted patients by outcome, per hospital (mean over replications)."""
    r = run.result
    return _stacked_outcomes(
        list(r.summaries[0].hospitals),
        lambda metric: _nanmean(r.hospital_values(metric), axis=0),
        _title("Outcomes per hospital (mean over replications)", what),
        460,
    )


def resource_figure(run: Run, what: str, kinds: Sequence[ResourceKind] = (ResourceKind.MANUFACTURING,)) -> go.Figure:
    """Utilisation and queue over time per node (mean over replications), warm-up shaded."""
    r, o = run.result, run.result.first
    days = np.arange(1, r.busy_mean.shape[1] + 1)
    figure = go.Figure()
    for i, node in enumerate(o.resource_node):
        if int(o.resource_kind[i]) not in {int(k) for k in kinds} or o.capacity[i] <= 0:
            continue
        label = f"{node} ({_KINDS[int(o.resource_kind[i])]})"
        figure.add_trace(go.Scatter(x=days, y=r.busy_mean[i] / o.capacity[i], name=f"{label} utilisation"))
        figure.add_trace(go.Scatter(x=days, y=r.queue_mean[i], name=f"{label} queue", yaxis="y2", line={"dash": "dot"}))
    figure.add_vrect(x0=0, x1=o.warmup_days, fillcolor="#e2e8f0", opacity=0.5, line_width=0, annotation_text="warm-up")
    figure.update_layout(
        title=_title(f"{Path(run.file).stem}: utilisation (solid) and patients waiting (dotted) per day", what),
        xaxis_title="simulated day",
        yaxis={"title": "utilisation", "tickformat": ".0%"},
        yaxis2={"title": "patients waiting", "overlaying": "y", "side": "right"},
        height=480,
        legend={"font": {"size": 10}},
    )
    return figure


def cost_figure(runs: Sequence[Run], what: str) -> go.Figure:
    """Cost per treated patient, stacked by part, per scenario (mean over replications)."""
    figure = go.Figure()
    labels = [Path(run.file).stem for run in runs]
    for part in COST_PARTS:
        values = [float(_nanmean(run.result.values(part))) for run in runs]
        figure.add_trace(go.Bar(x=labels, y=values, name=LABELS[part].replace("of which", "").strip()))
    currency = runs[0].result.currency
    figure.update_layout(
        title=_title(f"Cost per treated patient ({currency}, mean over replications)", what),
        barmode="stack",
        yaxis_title=currency,
        height=440,
    )
    return figure


def difference_figure(comparison: Comparison, what: str, metrics: Sequence[str]) -> go.Figure:
    """B − A with its 95 % paired interval, one panel row per metric (units differ, so no shared axis)."""
    chosen = [comparison.difference(m) for m in metrics]
    figure = go.Figure()
    for d in chosen:
        figure.add_trace(
            go.Scatter(
                x=[d.difference],
                y=[LABELS[d.metric].strip()],
                error_x={"type": "data", "symmetric": False, "array": [d.high - d.difference],
                         "arrayminus": [d.difference - d.low]},
                mode="markers",
                marker={"size": 10, "color": "#2b6cb0" if d.significant else "#a0aec0"},
                showlegend=False,
            )
        )  # fmt: skip
    figure.add_vline(x=0, line_dash="dash")
    figure.update_layout(
        title=_title("Days: B − A with 95 % paired confidence interval (grey: not significant)", what),
        xaxis_title="difference (days)",
        height=120 + 45 * len(chosen),
    )
    return figure


# ---- pages ----------------------------------------------------------------------------------------------------


def _headline_table(run: Run) -> Table:
    rows = []
    for name, label, unit in METRICS:
        mean, low, high, _ = mean_ci(run.result.values(name))
        interval = f"{format_value(low, unit)} to {format_value(high, unit)}" if math.isfinite(low) else "–"
        rows.append((label, format_value(mean, unit), interval))
    return Table(
        ("figure", "mean", "95 % CI of the mean"), rows, caption=f"{run.what()}; currency {run.result.currency}"
    )


def _hospital_table(run: Run) -> Table:
    r = run.result
    means = {name: _nanmean(r.hospital_values(name), axis=0) for name in HOSPITAL_METRICS}
    rows = []
    for i, h in enumerate(r.summaries[0].hospitals):
        rows.append(
            (
                h,
                run.name_of(h),
                f"{means['patients'][i]:.0f}",
                f"{means['treated_share'][i]:.1%}",
                f"{means['lost_share'][i]:.1%}",
                format_value(float(means["v2v_median"][i]), "days"),
                format_value(float(means["v2v_p90"][i]), "days"),
                format_value(float(means["d2i_median"][i]), "days"),
            )
        )
    columns = ("node", "hospital", "patients", "treated", "lost waiting", "v2v median", "v2v p90", "decision→infusion")
    return Table(columns, rows, caption="Means over replications of each replication's figure (days)")


def _conventions() -> str:
    return (
        "Only patients referred after the warm-up and at least the cool-down before the horizon are counted, so "
        "that every counted patient can finish; the share still in progress is a check and should be about 0. "
        "Times are of counted patients who were infused. "
        "Cost per treated patient = all manufacturing runs, shipments, bed-days and bridging of counted patients "
        "plus the nodes' fixed costs over the counted window (each node's by the share of its manufacturing capacity "
        "used), divided by the patients treated. See docs/twin.md."
    )


def run_page(run: Run) -> str:
    what = run.what()
    warnings = run.warnings()
    network = run.scenario.network.network
    sections = [
        Section(
            "What was run",
            f"{network.name}: {run.result.replications} replications of {run.scenario.horizon_days:g} simulated days "
            f"each (referrals in the first {run.scenario.warmup_days:g} days (warm-up) and the last "
            f"{run.scenario.cooldown_days:g} days (cool-down) are simulated but not counted), seed "
            f"{run.result.seed}. " + _conventions(),
            warnings=warnings,
            tables=[_headline_table(run)],
        ),
        Section(
            "Vein-to-vein time per hospital",
            figures=[v2v_figure([run], what)],
            tables=[_hospital_table(run)],
        ),
        Section("Patients treated and lost", figures=[outcome_figure([run], what), hospital_outcome_figure(run, what)]),
        Section(
            "Capacity: utilisation and queues over time",
            figures=[
                resource_figure(run, what),
                resource_figure(run, what, (ResourceKind.APHERESIS, ResourceKind.INFUSION)),
            ],
            notes=["Means over replications of daily time averages; the shaded days are the warm-up."],
        ),
        Section("Cost per treated patient", figures=[cost_figure([run], what)], notes=[run.cost_note()]),
    ]
    report = Report(
        title=f"Twin run: {network.name}",
        subtitle=what,
        sections=sections,
        generated_at=datetime.now(UTC),
        generator="CellRail twin",
        metadata={"scenario": run.file, "engine": f"{run.result.engine} ({run.result.workers} workers)"},
    )
    return render(report)


def _difference_table(comparison: Comparison) -> Table:
    rows = []
    for d in comparison.differences:
        unit = UNITS[d.metric]
        rows.append(
            (
                LABELS[d.metric].strip(),
                format_value(d.mean_a, unit),
                format_value(d.mean_b, unit),
                _signed(d, unit),
                f"{_change(d.low, unit)} to {_change(d.high, unit)}" if math.isfinite(d.low) else "–",
                "yes" if d.significant else "no",
                f"{d.variance_reduction:.1f}×" if math.isfinite(d.variance_reduction) else "–",
            )
        )
    columns = ("figure", "A", "B", "B − A", "95 % CI of B − A", "significant", "CRN gain (CI width)")
    return Table(columns, rows, caption="Paired over replications run with the same seeds (common random numbers)")


def _signed(d: Difference, unit: str) -> str:
    text = _change(abs(d.difference), unit)
    return text if text == "–" else ("+" if d.difference >= 0 else "−") + text


def comparison_page(a: Run, b: Run, comparison: Comparison) -> str:
    what = f"A = {Path(a.file).name}, B = {Path(b.file).name} · {a.result.replications} paired replications · seed " + (
        f"{a.result.seed} · horizon {a.scenario.horizon_days:g} d (warm-up {a.scenario.warmup_days:g} d, "
        f"cool-down {a.scenario.cooldown_days:g} d)"
    )
    verdicts = [
        comparison.difference(m).verdict(a.result.currency) for m in ("v2v_median", "treated_share", "cost_per_treated")
    ]
    gains = [d.variance_reduction for d in comparison.differences if math.isfinite(d.variance_reduction)]
    crn = (
        f"Pairing replication k of A with replication k of B (same seed, same patients) made the confidence "
        f"intervals a median {np.median(gains):.1f} times narrower than treating the runs as independent."
        if gains
        else ""
    )
    sections = [
        Section(
            "Verdict",
            "\n\n".join([*verdicts, crn]),
            warnings=[*a.warnings(), *b.warnings()],
            tables=[_difference_table(comparison)],
            notes=[_conventions()],
        ),
        Section(
            "Differences in days",
            figures=[difference_figure(comparison, what, ("v2v_median", "v2v_p90", "d2i_median", "d2i_p90"))],
        ),
        Section("Vein-to-vein time per hospital", figures=[v2v_figure([a, b], what)]),
        Section("Patients treated and lost", figures=[outcome_figure([a, b], what)]),
        Section("Manufacturing utilisation and queues", figures=[resource_figure(a, what), resource_figure(b, what)]),
        Section("Cost per treated patient", figures=[cost_figure([a, b], what)], notes=[a.cost_note(), b.cost_note()]),
    ]
    report = Report(
        title=f"Twin comparison: {a.scenario.network.network.name} vs {b.scenario.network.network.name}",
        subtitle=what,
        sections=sections,
        generated_at=datetime.now(UTC),
        generator="CellRail twin",
        metadata={"A": a.file, "B": b.file},
    )
    return render(report)


def write_run(run: Run, out: Path) -> Path:
    """All files of a run in ``out``; returns the HTML report's path."""
    out.mkdir(parents=True, exist_ok=True)
    write_run_csv(run, out)
    page = out / "report.html"
    page.write_text(run_page(run), encoding="utf-8")
    return page


def write_comparison(a: Run, b: Run, comparison: Comparison, out: Path) -> Path:
    """differences.csv and the comparison page in ``out``, each scenario's run files in ``out/a`` and ``out/b``."""
    out.mkdir(parents=True, exist_ok=True)
    for run, sub in ((a, "a"), (b, "b")):
        (out / sub).mkdir(exist_ok=True)
        write_run_csv(run, out / sub)
    write_comparison_csv(comparison, out)
    page = out / "report.html"
    page.write_text(comparison_page(a, b, comparison), encoding="utf-8")
    return page
