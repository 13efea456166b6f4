"""The network registry: the example files, the JSON Schema, every validation rule and the `network check` CLI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cellrail.cli.main import app
from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.rail.network import ColdChain, Network, NodeKind, load_network, network_json_schema

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCHEMA_FILE = ROOT / "docs" / "network-schema.json"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# A small valid network: one hospital, one factory, one lane. Tests edit a copy and check the exact problem.
BASE = """\
network:
  id: test-net
  name: Test network
nodes:
  - id: h-a
    name: Hospital A
    kind: hospital
    fin: A1001
    timezone: Asia/Shanghai
    location: {city: Shanghai, country: CN, latitude: 31.23, longitude: 121.47}
    capabilities:
      apheresis_chairs: 1
      infusion_beds: 1
  - id: cf-x
    name: Factory X
    kind: central_factory
    fin: A1101
    timezone: Asia/Shanghai
    location: {city: Suzhou, country: CN, latitude: 31.30, longitude: 120.59}
    capabilities:
      manufacturing:
        - {platform: CliniMACS Prodigy, units: 2, run_days: 13}
      qc_lab: true
lanes:
  - {from: h-a, to: cf-x, transport_hours: 3}
"""

HOSPITAL_B = """\
  - id: h-b
    name: Hospital B
    kind: hospital
    fin: A1002
    timezone: Asia/Shanghai
    location: {city: Hangzhou, country: CN, latitude: 30.27, longitude: 120.16}
    capabilities: {apheresis_chairs: 1, infusion_beds: 1}
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def with_hospital_b(text: str = BASE) -> str:
    """BASE with a second hospital inserted just before `lanes:`."""
    return edit("lanes:\n", HOSPITAL_B + "lanes:\n", text)


def line(text: str, needle: str) -> int:
    """1-based line of the only line of ``text`` that contains ``needle``."""
    hits = [number for number, content in enumerate(text.splitlines(), start=1) if needle in content]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def problems(text: str, file: str = "net.yaml") -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        load_network(text, file)
    return list(caught.value.problems)


def where(found: list[Problem]) -> list[tuple[str | None, int | None, str]]:
    return [(p.file, p.line, p.field) for p in found]


# ---- The example networks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["centralized.yaml", "regional.yaml"])
def test_example_loads_and_passes_every_rule(name: str) -> None:
    network = load_example(name)

    assert len(network.hospitals()) == 8
    assert network.network.sources, "figures must be traceable to sources"
    for node in network.nodes:
        assert node.timezone == "Asia/Shanghai"
        assert node.location.country == "CN"
    monday = datetime(2025, 3, 3, 9, tzinfo=SHANGHAI)
    for hospital in network.hospitals():
        assert hospital.capabilities.apheresis_chairs > 0
        assert hospital.capabilities.infusion_beds > 0
        makers = network.manufacturing_nodes()
        # Cells reach a manufacturing node within two days (fresh cells keep 72 h), and the product comes back.
        trips = [
            (network.earliest_arrival(hospital.id, m.id, monday), network.earliest_arrival(m.id, hospital.id, monday))
            for m in makers
        ]
        assert any(
            there is not None and back is not None and (there - monday).total_seconds() <= 48 * 3600
            for there, back in trips
        )


def load_example(name: str) -> Network:
    path = EXAMPLES / name
    return load_network(path.read_text(encoding="utf-8"), str(path))


def test_examples_have_the_same_hospitals() -> None:
    def hospitals(network: Network) -> dict[str, tuple[object, ...]]:
        return {
            h.id: (h.name, h.fin, h.location, h.capabilities.apheresis_chairs, h.capabilities.infusion_beds)
            for h in network.hospitals()
        }

    assert hospitals(load_example("centralized.yaml")) == hospitals(load_example("regional.yaml"))


def test_centralized_example_shape_and_sourced_figures() -> None:
    network = load_example("centralized.yaml")
    [factory] = network.manufacturing_nodes()
    assert factory.kind is NodeKind.CENTRAL_FACTORY
    [platform] = factory.capabilities.manufacturing
    assert 9 <= platform.run_days <= 14  # conventional process, 9-14 days
    assert 4000 <= platform.units * 365 / platform.run_days <= 10000  # large facility, ISPE 2024
    fresh = [lane for lane in network.lanes if lane.cold_chain is ColdChain.FRESH_2_8C]
    cryo = [lane for lane in network.lanes if lane.cold_chain is ColdChain.CRYO_VAPOUR_LN2]
    assert {lane.origin for lane in fresh} == {h.id for h in network.hospitals()}
    assert {lane.destination for lane in cryo} == {h.id for h in network.hospitals()}
    assert all(lane.transport_hours <= 30 for lane in fresh)  # CF-45 shipper holds 2-8 °C up to 30 h


def test_regional_example_shape_and_sourced_figures() -> None:
    network = load_example("regional.yaml")
    kinds = [n.kind for n in network.manufacturing_nodes()]
    assert kinds.count(NodeKind.REGIONAL_HUB) == 3
    assert kinds.count(NodeKind.HOSPITAL) == 2  # point of care
    runs = {p.platform: p.run_days for n in network.manufacturing_nodes() for p in n.capabilities.manufacturing}
    assert runs == {"CliniMACS Prodigy": 13, "Lonza Cocoon": 7}
    assert all(lane.cold_chain is ColdChain.FRESH_2_8C and lane.transport_hours <= 30 for lane in network.lanes)


# ---- The JSON Schema in docs ------------------------------------------------------------------------------------


def test_schema_in_docs_is_the_generated_one() -> None:
    generated = json.dumps(network_json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == generated, (
        "docs/network-schema.json is stale: run `cellrail network schema --out docs/network-schema.json`"
    )


def test_schema_command_prints_the_same_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = CliRunner().invoke(app, ["network", "schema", "--out", str(out)])
    assert result.exit_code == 0
    assert out.read_text(encoding="utf-8") == SCHEMA_FILE.read_text(encoding="utf-8")


# ---- Each rule: one problem naming file, line and field ---------------------------------------------------------


def test_base_network_is_valid() -> None:
    network = load_network(BASE, "net.yaml")
    assert [n.id for n in network.manufacturing_nodes()] == ["cf-x"]


def test_unknown_node_in_a_lane() -> None:
    text = edit("to: cf-x,", "to: cf-y,")
    [problem] = problems(text)
    assert (problem.file, problem.line, problem.field) == ("net.yaml", 25, "lanes[0].to")
    assert problem.message == "unknown node 'cf-y'"
    assert str(problem) == "net.yaml:25: lanes[0].to: unknown node 'cf-y'"


def test_unknown_node_at_the_start_of_a_lane() -> None:
    text = edit("from: h-a,", "from: h-z,")
    assert where(problems(text)) == [("net.yaml", 25, "lanes[0].from")]


def test_lane_joining_a_node_to_itself() -> None:
    text = edit("to: cf-x,", "to: h-a,")
    [problem] = problems(text)
    assert (problem.line, problem.field, problem.message) == (25, "lanes[0].to", "a lane must join two different nodes")


def test_hospital_that_no_manufacturing_node_can_reach() -> None:
    text = with_hospital_b()
    [problem] = problems(text)
    assert (problem.file, problem.line, problem.field) == ("net.yaml", line(text, "- id: h-b"), "nodes[2].id")
    assert problem.message == "hospital 'h-b' has no lane route to and from any manufacturing node"


def test_one_way_lane_is_not_enough_to_serve_a_hospital() -> None:
    text = edit("transport_hours: 3}", "transport_hours: 3, bidirectional: false}")
    [problem] = problems(text)
    assert (problem.line, problem.field) == (5, "nodes[0].id")
    assert "h-a" in problem.message


def test_hospital_served_through_another_hospital_is_fine() -> None:
    text = with_hospital_b() + "  - {from: h-b, to: h-a, transport_hours: 2}\n"
    network = load_network(text, "net.yaml")
    assert network.reachable("h-b") == {"h-a", "h-b", "cf-x"}


def test_negative_capacity() -> None:
    text = edit("apheresis_chairs: 1", "apheresis_chairs: -1")
    # Exactly one problem: the hospital rule "no apheresis chair" must not pile on, nor "nodes is too short".
    [problem] = problems(text)
    assert (problem.file, problem.line, problem.field) == ("net.yaml", 12, "nodes[0].capabilities.apheresis_chairs")
    assert problem.message == "Input should be greater than or equal to 0"


def test_negative_units_on_a_platform() -> None:
    text = edit("units: 2,", "units: -3,")
    [problem] = problems(text)
    assert (problem.line, problem.field) == (22, "nodes[1].capabilities.manufacturing[0].units")


def test_unknown_field_is_a_typo() -> None:
    text = edit("      qc_lab: true\n", "      qc_lab: true\n      cryostorage_postions: 50\n")
    [problem] = problems(text)
    assert (problem.line, problem.field) == (24, "nodes[1].capabilities.cryostorage_postions")
    assert problem.message.startswith("unknown field")


def test_missing_required_field() -> None:
    text = edit("    fin: A1101\n", "")
    [problem] = problems(text)
    assert (problem.line, problem.field, problem.message) == (14, "nodes[1].fin", "required field is missing")


def test_duplicate_yaml_key() -> None:
    text = edit("  name: Test network\n", "  name: Test network\n  id: other-net\n")
    [problem] = problems(text)
    assert (problem.file, problem.line, problem.field, problem.message) == (
        "net.yaml",
        4,
        "network.id",
        "duplicate key",
    )


def test_yaml_syntax_error_names_its_line() -> None:
    text = edit("  - {from: h-a, to: cf-x, transport_hours: 3}", "  - {from: h-a, to: cf-x, transport_hours: 3")
    [problem] = problems(text)
    assert (problem.file, problem.line, problem.field) == ("net.yaml", 26, "")
    assert problem.message.startswith("YAML syntax error: ")


def test_tab_indentation_is_a_syntax_error_on_its_line() -> None:
    text = edit("    name: Factory X\n", "\tname: Factory X\n")
    [problem] = problems(text)
    assert problem.line == 15
    assert "'\\t'" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "null\n"])
def test_empty_file(text: str) -> None:
    [problem] = problems(text)
    assert (problem.file, problem.line, problem.field, problem.message) == ("net.yaml", 1, "", "the file is empty")


def test_file_that_is_not_a_mapping() -> None:
    [problem] = problems("- just\n- a list\n")
    assert (problem.line, problem.field) == (1, "")


def test_duplicate_node_id() -> None:
    text = with_hospital_b().replace("- id: h-b", "- id: h-a")
    found = problems(text)
    assert where(found) == [("net.yaml", line(text, "name: Hospital B") - 1, "nodes[2].id")]
    assert found[0].message == "duplicate node id 'h-a'"


def test_duplicate_fin() -> None:
    text = edit("fin: A1101", "fin: A1001")
    [problem] = problems(text)
    assert (problem.line, problem.field) == (17, "nodes[1].fin")
    assert problem.message == "FIN 'A1001' is already used by another node"


def test_manufacturing_node_without_qc_lab() -> None:
    text = edit("      qc_lab: true\n", "")
    found = problems(text)
    # The field is absent, so the problem points at the capabilities block that should hold it. Without a QC lab
    # the factory cannot release products, so the hospital it serves is reported as unserved as well.
    assert where(found) == [("net.yaml", 20, "nodes[1].capabilities.qc_lab"), ("net.yaml", 5, "nodes[0].id")]
    assert found[0].message == "node 'cf-x' manufactures but has no QC lab to test products for release"


def test_manufacturing_node_with_qc_lab_false_points_at_the_flag() -> None:
    text = edit("qc_lab: true", "qc_lab: false")
    assert where(problems(text))[0] == ("net.yaml", 23, "nodes[1].capabilities.qc_lab")


def test_factory_without_manufacturing_units() -> None:
    text = edit("units: 2,", "units: 0,")
    # With no units the factory cannot take products, so the hospital is left unserved too.
    assert where(problems(text)) == [
        ("net.yaml", 21, "nodes[1].capabilities.manufacturing"),
        ("net.yaml", 5, "nodes[0].id"),
    ]


def test_hospital_without_infusion_bed() -> None:
    text = edit("infusion_beds: 1", "infusion_beds: 0")
    [problem] = problems(text)
    assert (problem.line, problem.field) == (13, "nodes[0].capabilities.infusion_beds")
    assert problem.message == "hospital 'h-a' has no infusion bed, so it cannot treat patients"


@pytest.mark.parametrize("fin", ["O1101", "A101", "A11011", "a1101", "A10B1"])
def test_bad_fin(fin: str) -> None:
    text = edit("fin: A1101", f'fin: "{fin}"')
    [problem] = problems(text)
    assert (problem.line, problem.field) == (17, "nodes[1].fin")
    assert problem.message == f"'{fin}' is not an ISBT 128 FIN (5 characters, e.g. A9999)"


@pytest.mark.parametrize("zone", ["Asia/Suzhou", "CST", "asia/shanghai", "+08:00"])
def test_bad_time_zone(zone: str) -> None:
    text = edit(
        "    timezone: Asia/Shanghai\n    location: {city: Suzhou",
        f'    timezone: "{zone}"\n    location: {{city: Suzhou',
    )
    [problem] = problems(text)
    assert (problem.line, problem.field) == (18, "nodes[1].timezone")
    assert problem.message == f"'{zone}' is not an IANA time zone (e.g. Asia/Shanghai)"


def test_bad_enum_values_name_the_field() -> None:
    text = edit("kind: central_factory", "kind: factory")
    text = edit("transport_hours: 3}", "transport_hours: 3, days: [mon, funday]}", text)
    assert where(problems(text)) == [
        ("net.yaml", 16, "nodes[1].kind"),
        ("net.yaml", 25, "lanes[0].days[1]"),
    ]


def test_every_shape_problem_is_reported_at_once() -> None:
    text = edit("apheresis_chairs: 1", "apheresis_chairs: -1")
    text = edit("fin: A1101", "fin: O1101", text)
    text = edit(
        "timezone: Asia/Shanghai\n    location: {city: Suzhou",
        "timezone: Asia/Suzhou\n    location: {city: Suzhou",
        text,
    )
    text = edit("      qc_lab: true\n", "      qc_lab: true\n      cryostorage_postions: 50\n", text)
    text = edit("transport_hours: 3}", "transport_hours: -3}", text)
    assert where(problems(text)) == [
        ("net.yaml", 12, "nodes[0].capabilities.apheresis_chairs"),
        ("net.yaml", 17, "nodes[1].fin"),
        ("net.yaml", 18, "nodes[1].timezone"),
        ("net.yaml", 24, "nodes[1].capabilities.cryostorage_postions"),
        ("net.yaml", 26, "lanes[0].transport_hours"),
    ]


def test_every_network_rule_problem_is_reported_at_once() -> None:
    text = with_hospital_b().replace("- id: h-b", "- id: h-a")
    text = edit("fin: A1002", "fin: A1001", text)
    text = edit("      qc_lab: true\n", "", text)
    text = edit("infusion_beds: 1}", "infusion_beds: 0}", text)
    found = problems(text)
    assert where(found) == [
        ("net.yaml", 20, "nodes[1].capabilities.qc_lab"),
        ("net.yaml", 23, "nodes[2].id"),
        ("net.yaml", 26, "nodes[2].fin"),
        ("net.yaml", 29, "nodes[2].capabilities.infusion_beds"),
        ("net.yaml", 5, "nodes[0].id"),
        ("net.yaml", 23, "nodes[2].id"),
    ]
    assert [p.message for p in found] == [
        "node 'cf-x' manufactures but has no QC lab to test products for release",
        "duplicate node id 'h-a'",
        "FIN 'A1001' is already used by another node",
        "hospital 'h-a' has no infusion bed, so it cannot treat patients",
        "hospital 'h-a' has no lane route to and from any manufacturing node",
        "hospital 'h-a' has no lane route to and from any manufacturing node",
    ]


def test_lane_problems_are_reported_with_node_problems() -> None:
    text = edit("      qc_lab: true\n", "")
    text = edit("from: h-a, to: cf-x", "from: h-q, to: cf-q", text)
    # Reachability is not judged while a lane names an unknown node (it would only repeat the lane problem).
    assert where(problems(text)) == [
        ("net.yaml", 20, "nodes[1].capabilities.qc_lab"),
        ("net.yaml", 24, "lanes[0].from"),
        ("net.yaml", 24, "lanes[0].to"),
    ]


def test_recursive_yaml_alias_is_a_problem_not_a_crash() -> None:
    text = "network: &loop\n  id: x\n  name: y\n  again: *loop\nnodes: []\n"
    found = problems(text)
    assert ("net.yaml", 4, "network.again") in where(found)


def test_unsafe_yaml_tag_is_refused() -> None:
    text = edit("  name: Test network\n", "  name: !!python/object:os.system {}\n")
    [problem] = problems(text)
    assert (problem.line, problem.field) == (3, "")
    assert problem.message.startswith("YAML syntax error: could not determine a constructor")


def test_control_character_is_a_syntax_error_on_its_line() -> None:
    text = edit("  name: Test network\n", "  name: Test \x01network\n")
    [problem] = problems(text)
    assert (problem.line, problem.message) == (3, "YAML syntax error: unacceptable character #x0001")


# ---- earliest_arrival: lane days, transport hours, time zones ---------------------------------------------------

# h-a <-> cf-x (Mon-Fri, 3 h) and cf-x <-> h-b (Mon and Wed only, 5 h).
ROUTE = with_hospital_b() + "  - {from: cf-x, to: h-b, transport_hours: 5, days: [mon, wed]}\n"

# Two islands: h-a <-> cf-x and h-b <-> cf-z, joined only by a one-way lane cf-x -> h-b.
ISLANDS = (
    with_hospital_b()
    + "  - {from: h-b, to: cf-z, transport_hours: 2}\n"
    + "  - {from: cf-x, to: h-b, transport_hours: 4, bidirectional: false}\n"
).replace(
    HOSPITAL_B,
    HOSPITAL_B
    + """\
  - id: cf-z
    name: Factory Z
    kind: regional_hub
    fin: A1102
    location: {city: Hangzhou, country: CN, latitude: 30.27, longitude: 120.16}
    capabilities: {manufacturing: [{platform: Lonza Cocoon, units: 1, run_days: 7}], qc_lab: true}
""",
)


def test_ready_on_a_lane_day_leaves_at_once() -> None:
    network = load_network(BASE, "net.yaml")
    ready = datetime(2025, 3, 5, 15, 30, tzinfo=SHANGHAI)  # a Wednesday
    assert network.earliest_arrival("h-a", "cf-x", ready) == datetime(2025, 3, 5, 18, 30, tzinfo=SHANGHAI)


def test_ready_on_a_saturday_leaves_monday_at_eight_local() -> None:
    network = load_network(BASE, "net.yaml")  # the lane runs Monday to Friday
    ready = datetime(2025, 3, 8, 10, 0, tzinfo=SHANGHAI)  # a Saturday
    assert network.earliest_arrival("h-a", "cf-x", ready) == datetime(2025, 3, 10, 11, 0, tzinfo=SHANGHAI)


def test_lane_days_are_read_in_the_origin_time_zone() -> None:
    network = load_network(BASE, "net.yaml")
    # Friday 20:00 UTC is already Saturday 04:00 in Shanghai, so the courier waits for Monday 08:00 Shanghai.
    ready = datetime(2025, 3, 7, 20, 0, tzinfo=ZoneInfo("UTC"))
    arrival = network.earliest_arrival("h-a", "cf-x", ready)
    assert arrival == datetime(2025, 3, 10, 11, 0, tzinfo=SHANGHAI)
    assert arrival is not None
    assert arrival.tzinfo == ready.tzinfo


def test_multi_leg_route_waits_for_each_lane_day() -> None:
    network = load_network(ROUTE, "net.yaml")
    ready = datetime(2025, 3, 6, 9, 0, tzinfo=SHANGHAI)  # Thursday: h-a -> cf-x leaves at once, arrives 12:00
    # cf-x -> h-b runs Monday and Wednesday only: next Monday 08:00, plus 5 hours.
    assert network.earliest_arrival("h-a", "h-b", ready) == datetime(2025, 3, 10, 13, 0, tzinfo=SHANGHAI)


def test_earliest_arrival_to_itself_is_the_ready_time() -> None:
    network = load_network(BASE, "net.yaml")
    ready = datetime(2025, 3, 8, 10, 0, tzinfo=SHANGHAI)
    assert network.earliest_arrival("h-a", "h-a", ready) == ready


def test_earliest_arrival_is_none_when_unreachable() -> None:
    network = load_network(ISLANDS, "net.yaml")
    ready = datetime(2025, 3, 6, 9, 0, tzinfo=SHANGHAI)  # Thursday
    assert network.earliest_arrival("h-a", "h-b", ready) == datetime(2025, 3, 6, 16, 0, tzinfo=SHANGHAI)
    assert network.earliest_arrival("h-b", "cf-x", ready) is None  # cf-x -> h-b is one way
    assert network.earliest_arrival("h-b", "h-a", ready) is None
    assert network.earliest_arrival("cf-z", "h-a", ready) is None


def test_earliest_arrival_picks_the_faster_route() -> None:
    text = ROUTE + "  - {from: h-a, to: h-b, transport_hours: 30, bidirectional: false}\n"
    network = load_network(text, "net.yaml")
    ready = datetime(2025, 3, 6, 9, 0, tzinfo=SHANGHAI)
    # Direct: Thursday 09:00 + 30 h = Friday 15:00, before the Monday arrival through cf-x.
    assert network.earliest_arrival("h-a", "h-b", ready) == datetime(2025, 3, 7, 15, 0, tzinfo=SHANGHAI)


# ---- `cellrail network check` ------------------------------------------------------------------------------------


def run_check(path: Path | str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["network", "check", str(path)])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["centralized.yaml", "regional.yaml"])
def test_check_good_file_exits_zero(name: str) -> None:
    code, out, err = run_check(EXAMPLES / name)
    assert code == 0, err
    assert out.startswith(f"ok {EXAMPLES / name}: network 'cn-")
    assert "8 hospitals" in out
    assert err == ""


def test_check_bad_file_lists_every_problem_and_exits_two(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = edit("apheresis_chairs: 1", "apheresis_chairs: -1")
    text = edit("fin: A1101", "fin: O1101", text)
    text = edit("      qc_lab: true\n", "      qc_lab: true\n      cryostorage_postions: 50\n", text)
    path.write_text(text, encoding="utf-8")

    code, out, err = run_check(path)

    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"error {path}:12: nodes[0].capabilities.apheresis_chairs: Input should be greater than or equal to 0",
        f"error {path}:17: nodes[1].fin: 'O1101' is not an ISBT 128 FIN (5 characters, e.g. A9999)",
        f"error {path}:24: nodes[1].capabilities.cryostorage_postions: "
        "unknown field (check the spelling against docs/network-schema.json)",
    ]
    assert "Traceback" not in out + err


def test_check_rule_problem_in_cli(tmp_path: Path) -> None:
    path = tmp_path / "lane.yaml"
    path.write_text(edit("to: cf-x,", "to: cf-y,"), encoding="utf-8")
    code, _, err = run_check(path)
    assert code == 2
    assert err.splitlines() == [f"error {path}:25: lanes[0].to: unknown node 'cf-y'"]


def test_check_syntax_error_in_cli(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("network:\n  id: x\n nodes: [\n", encoding="utf-8")
    code, _, err = run_check(path)
    assert code == 2
    assert err.startswith(f"error {path}:3: YAML syntax error: ")
    assert "Traceback" not in err


def test_check_missing_file_exits_two_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a short relative path, as an operator would type it
    code, out, err = run_check("nowhere.yaml")
    assert code == 2
    assert out == ""
    assert err == "error nowhere.yaml: No such file or directory\n"
    assert "Traceback" not in err


def test_check_binary_file_exits_two_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00network")
    code, _, err = run_check(path)
    assert code == 2
    assert err.strip() == f"error {path}: not a UTF-8 text file (byte 0: invalid start byte)"
