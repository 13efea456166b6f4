"""The shared HTML report page: self-contained (opens offline) and escapes whatever text it is given."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import plotly.graph_objects as go

from cellrail.reports.page import Report, Section, Table, render


def _page(**section: object) -> str:
    return render(
        Report(
            title="Twin <report>",
            subtitle="examples/regional.yaml",
            sections=[Section(heading="Vein-to-vein", **section)],  # type: ignore[arg-type]
            generated_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
            metadata={"seed": "7"},
        )
    )


def test_page_embeds_plotly_and_loads_nothing_from_outside() -> None:
    page = _page(figures=[go.Figure(go.Bar(x=["a"], y=[1]))])
    assert not re.search(r"<script[^>]+src=", page), "a script is fetched from outside the page"
    assert not re.search(r"<link[^>]+href=", page), "a stylesheet is fetched from outside the page"
    assert "Plotly.newPlot" in page
    assert page.count("<script type='text/javascript'>") == 1, "plotly.js is embedded exactly once"


def test_text_tables_warnings_and_notes_are_escaped_and_shown() -> None:
    page = _page(
        text="First paragraph.\n\n<b>second</b>",
        warnings=["Demand exceeds capacity at hub-east"],
        tables=[Table(columns=["site", "median"], rows=[["h<1>", 12.345], ["h2", 1200]], caption="days")],
        notes=["Source: ClinicalTrials.gov"],
    )
    assert "<title>Twin &lt;report&gt;</title>" in page
    assert "<p>&lt;b&gt;second&lt;/b&gt;</p>" in page
    assert "Demand exceeds capacity at hub-east" in page
    assert "<td>h&lt;1&gt;</td><td>12.35</td>" in page
    assert "<td>1,200</td>" in page
    assert "Source: ClinicalTrials.gov" in page
    assert "<td>seed</td><td>7</td>" in page
    assert "2026-11-25T12:00:00+00:00" in page
