"""The custody ledger: sealing and re-walking the hash chain, detection of every kind of tampering, and the
database refusing to change or remove events (SQLite and PostgreSQL).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import re
import textwrap
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from cellrail.kernel.clock import ManualClock, iso_utc
from cellrail.kernel.errors import Conflict
from cellrail.rail.access_control import Principal, Role
from cellrail.rail.audit import Finding, StoredTree, verify_ledger
from cellrail.rail.ledger import (
    GENESIS,
    ChainBreak,
    CustodyEvent,
    EventKind,
    LedgerEntry,
    Signature,
    StoredRow,
    encode,
    link,
    seal,
    verify_rows,
)
from cellrail.rail.recording import origin, record
from cellrail.rail.services import EnrollPatient, enroll
from cellrail.store import repositories
from cellrail.store.repositories import SqlLedger
from cellrail.store.uow import SqlUnitOfWork
from cellrail.transparency import merkle
from tests.conftest import add_user, seed

RECORDED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AUDITOR = Principal("aud", "Aud", "hub", frozenset({Role.AUDITOR}))
# The logs of the test network (tests/conftest.py): one per site, and one for network-wide events.
NETWORK_LOG = origin("test-net", "network")
H_A_LOG = origin("test-net", "h-a")
H_B_LOG = origin("test-net", "h-b")
HUB_LOG = origin("test-net", "hub")

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.astimezone(UTC)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
signatures = st.builds(Signature, user=texts, full_name=texts, meaning=texts, at=moments)
events = st.builds(
    CustodyEvent,
    kind=st.sampled_from(EventKind),
    node=texts,
    actor=texts,
    role=st.sampled_from([r.value for r in Role]),
    at=moments,
    order=st.none() | st.from_regex(r"CHA1001[0-9]{2}[0-9A-Z]{7}", fullmatch=True),
    item=st.none() | texts,
    data=st.dictionaries(texts, json_values, max_size=4),
    signatures=st.lists(signatures, max_size=2).map(tuple),
)
event_lists = st.lists(events, min_size=1, max_size=12)


def stored(entries: list[LedgerEntry], chained: list[CustodyEvent]) -> list[StoredRow]:
    """Rows as the store keeps them: seq, order column, kind column, body, hash."""
    return [(e.seq, ev.order, ev.kind.value, e.body, e.hash) for e, ev in zip(entries, chained, strict=True)]


def sealed_rows(chained: list[CustodyEvent]) -> list[StoredRow]:
    return stored(seal(chained, 0, GENESIS, RECORDED), chained)


def broken_at(rows: list[StoredRow]) -> ChainBreak:
    report = verify_rows(rows)
    assert not report.ok
    assert report.first_break is not None
    return report.first_break


def test_encoding_is_canonical_and_hash_links_previous() -> None:
    event = CustodyEvent(
        EventKind.ORDER_MOVED,
        "hub",
        "qp",
        "qualified_person",
        datetime(2026, 3, 20, 1, 2, 3, 4, tzinfo=UTC),
        order="CHA100126000001K",
        item="A100326000001Q",
        data={"to": "released", "from": "qc_pending", "note": "é"},
        signatures=(Signature("qp", "Q P", "approved", datetime(2026, 3, 20, 1, 2, 3, tzinfo=UTC)),),
    )
    body = encode(event, 7, RECORDED, HUB_LOG)
    assert (
        body
        == (
            '{"actor":"qp","at":"2026-03-20T01:02:03.000004Z","data":{"from":"qc_pending","note":"é","to":"released"},'
            '"item":"A100326000001Q","kind":"order.moved","log":"cellrail/test-net/hub","node":"hub",'
            '"order":"CHA100126000001K","recorded_at":"2026-03-02T12:00:00.000000Z","role":"qualified_person","seq":7,'
            '"signatures":[{"at":"2026-03-20T01:02:03.000000Z","full_name":"Q P","meaning":"approved","user":"qp"}]}'
        ).encode()
    )
    head = hashlib.sha256(b"head").digest()
    [entry] = seal([event], 6, head, RECORDED, HUB_LOG)
    assert entry == LedgerEntry(7, body, hashlib.sha256(head + body).digest(), HUB_LOG)
    assert link(head, body) == entry.hash
    assert (entry.content()["seq"], entry.content()["log"]) == (7, HUB_LOG)
    # The log is part of the signed content: the same event at the same position of another log differs.
    assert encode(event, 7, RECORDED, origin("test-net", "h-a")) != body


@given(events)
@settings(max_examples=200, deadline=None)
def test_encoding_is_compact_sorted_json_that_decodes_to_the_event(event: CustodyEvent) -> None:
    body = encode(event, 3, RECORDED, HUB_LOG)
    content = json.loads(body)
    # The canonical form is a fixed point: keys sorted, no spaces, raw UTF-8, shortest round-trip floats.
    assert body == orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    assert list(content) == sorted(content)
    assert content["data"] == json.loads(json.dumps(dict(event.data)))
    assert (content["seq"], content["log"], content["at"]) == (3, HUB_LOG, iso_utc(event.at))
    assert encode(event, 3, iso_utc(RECORDED), HUB_LOG) == body, "a pre-formatted recorded_at encodes the same"


@pytest.mark.parametrize(
    "data",
    [{"t": float("nan")}, {"t": float("inf")}, {"deep": [1, {"t": -float("inf")}]}, {"t": (1.0, float("nan"))}],
)
def test_encoding_refuses_values_json_cannot_carry(data: dict[str, Any]) -> None:
    event = CustodyEvent(EventKind.CUSTODY_SCAN, "hub", "op", "operator", RECORDED, data=data)
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode(event, 1, RECORDED, HUB_LOG)


@given(event_lists)
@settings(max_examples=100, deadline=None)
def test_sealed_chain_verifies(chained: list[CustodyEvent]) -> None:
    rows = sealed_rows(chained)
    report = verify_rows(rows)
    assert report.ok
    assert report.first_break is None
    assert report.checked == len(chained)
    assert report.head_hash == rows[-1][4]
    assert [row[0] for row in rows] == list(range(1, len(chained) + 1))
    for (seq, _, _, body, _), event in zip(rows, chained, strict=True):
        content = json.loads(body)
        assert (content["seq"], content["kind"], content["order"], content["node"]) == (
            seq,
            event.kind.value,
            event.order,
            event.node,
        )


@given(event_lists, st.data())
@settings(max_examples=100, deadline=None)
def test_sealing_continues_a_chain(first: list[CustodyEvent], data: st.DataObject) -> None:
    second = data.draw(event_lists)
    entries = seal(first, 0, GENESIS, RECORDED)
    more = seal(second, entries[-1].seq, entries[-1].hash, RECORDED)
    rows = stored(entries, first) + stored(more, second)
    report = verify_rows(rows)
    assert report.ok
    assert report.checked == len(first) + len(second)


@given(event_lists, st.data())
@settings(max_examples=100, deadline=None)
def test_any_changed_byte_of_a_body_is_named(chained: list[CustodyEvent], data: st.DataObject) -> None:
    rows = sealed_rows(chained)
    index = data.draw(st.integers(0, len(rows) - 1), label="event")
    seq, order, kind, body, digest = rows[index]
    position = data.draw(st.integers(0, len(body) - 1), label="byte")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != body[position]), label="value")
    altered = body[:position] + bytes([value]) + body[position + 1 :]
    rows[index] = (seq, order, kind, altered, digest)
    assert broken_at(rows) == ChainBreak(seq, "content does not match its hash (altered)")
    assert verify_rows(rows).checked == index


@given(event_lists, st.data())
@settings(max_examples=100, deadline=None)
def test_any_changed_byte_of_a_hash_is_named(chained: list[CustodyEvent], data: st.DataObject) -> None:
    rows = sealed_rows(chained)
    index = data.draw(st.integers(0, len(rows) - 1), label="event")
    seq, order, kind, body, digest = rows[index]
    position = data.draw(st.integers(0, 31), label="byte")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != digest[position]), label="value")
    rows[index] = (seq, order, kind, body, digest[:position] + bytes([value]) + digest[position + 1 :])
    assert broken_at(rows) == ChainBreak(seq, "content does not match its hash (altered)")


@given(st.lists(events, min_size=2, max_size=12), st.data())
@settings(max_examples=100, deadline=None)
def test_deleting_any_event_but_the_last_is_named(chained: list[CustodyEvent], data: st.DataObject) -> None:
    rows = sealed_rows(chained)
    index = data.draw(st.integers(0, len(rows) - 2), label="event")
    seq = rows[index][0]
    del rows[index]
    assert broken_at(rows) == ChainBreak(seq, f"event {seq} is missing")


def test_deleting_the_last_event_leaves_a_shorter_chain_with_another_head() -> None:
    """A hash chain alone cannot tell a truncated tail from a shorter ledger: the head hash (and count) differ,
    so any copy of the head taken earlier exposes it. This documents the limit rather than hiding it."""
    chained = [CustodyEvent(EventKind.USER_CREATED, "hub", "system", "network_admin", RECORDED) for _ in range(3)]
    rows = sealed_rows(chained)
    full = verify_rows(rows)
    truncated = verify_rows(rows[:-1])
    assert truncated.ok
    assert (full.checked, truncated.checked) == (3, 2)
    assert truncated.head_hash == rows[1][4] != full.head_hash


@given(st.lists(events, min_size=2, max_size=12), st.data())
@settings(max_examples=100, deadline=None)
def test_swapping_two_events_is_named(chained: list[CustodyEvent], data: st.DataObject) -> None:
    rows = sealed_rows(chained)
    i = data.draw(st.integers(0, len(rows) - 2), label="first")
    j = data.draw(st.integers(i + 1, len(rows) - 1), label="second")
    # Reordered rows (as a reader would meet them): the first position holds the wrong seq.
    reordered = list(rows)
    reordered[i], reordered[j] = reordered[j], reordered[i]
    assert broken_at(reordered) == ChainBreak(i + 1, f"event {i + 1} is missing")
    # Swapped stored contents under unchanged sequence numbers: the first position no longer links.
    contents = list(rows)
    contents[i] = (rows[i][0], rows[j][1], rows[j][2], rows[j][3], rows[j][4])
    contents[j] = (rows[j][0], rows[i][1], rows[i][2], rows[i][3], rows[i][4])
    assert broken_at(contents) == ChainBreak(i + 1, "content does not match its hash (altered)")


@given(event_lists, st.data())
@settings(max_examples=100, deadline=None)
def test_editing_the_index_columns_is_named(chained: list[CustodyEvent], data: st.DataObject) -> None:
    rows = sealed_rows(chained)
    index = data.draw(st.integers(0, len(rows) - 1), label="event")
    seq, order, kind, body, digest = rows[index]
    reason = "indexed columns differ from the signed content"
    if data.draw(st.booleans(), label="edit order column"):
        other = data.draw(st.none() | st.from_regex(r"CHA1002[0-9]{2}[0-9A-Z]{7}", fullmatch=True))
        if other == order:
            other = "CHA100226000001X"
        rows[index] = (seq, other, kind, body, digest)
    else:
        other_kind = data.draw(st.sampled_from([k.value for k in EventKind if k.value != kind]))
        rows[index] = (seq, order, other_kind, body, digest)
    assert broken_at(rows) == ChainBreak(seq, reason)
    assert verify_rows(rows).checked == index


def test_a_re_hashed_forgery_breaks_the_next_link() -> None:
    """An attacker who also recomputes the forged event's hash makes that row fit its predecessor, so the
    chain breaks at the next event, whose stored hash covers the original; re-sealing the whole rest of the
    chain is consistent in itself and only a head hash kept elsewhere exposes it."""
    chained = [
        CustodyEvent(EventKind.ORDER_MOVED, "h-a", "op", "node_operator", RECORDED, order="CHA100126000001K")
        for _ in range(4)
    ]
    rows = sealed_rows(chained)
    forged = [*chained[:2], CustodyEvent(EventKind.ORDER_MOVED, "h-a", "op", "node_operator", RECORDED), chained[3]]
    forged_rows = sealed_rows(forged)
    assert forged_rows[:2] == rows[:2]
    spliced = [*rows[:2], forged_rows[2], rows[3]]
    assert broken_at(spliced) == ChainBreak(4, "content does not match its hash (altered)")
    assert verify_rows(spliced).checked == 3
    assert verify_rows(forged_rows).ok
    assert verify_rows(forged_rows).head_hash != verify_rows(rows).head_hash


# --- The store ---------------------------------------------------------------------------------------------------

# Where _populate's seven events land, in the order they are appended: one log per site, network-wide events in
# the network log. (global order, log, seq in that log, what it is)
POPULATED = [
    (1, NETWORK_LOG, 1, "network registered"),
    (2, H_A_LOG, 1, "slots opened at h-a"),
    (3, H_B_LOG, 1, "slots opened at h-b"),
    (4, HUB_LOG, 1, "slots opened at hub"),
    (5, H_A_LOG, 2, "user op-a created (at h-a)"),
    (6, H_A_LOG, 3, "MRN-1 enrolled at h-a"),
    (7, H_A_LOG, 4, "MRN-2 enrolled at h-a"),
]
POPULATED_LOGS = {NETWORK_LOG: 1, H_A_LOG: 4, H_B_LOG: 1, HUB_LOG: 1}


def _tree_nodes(size: int) -> int:
    """How many perfect subtrees above the leaves a Merkle tree of ``size`` leaves stores (leaves are derived
    from the event bytes)."""
    return sum(size >> level for level in range(1, size.bit_length()))


OF_LOG = "log_id = (SELECT id FROM ledger_logs WHERE origin = :l)"  # raw SQL's way to name a log by its origin


def _stored_tree_nodes(connection: Connection, log: str | None = None) -> int:
    """The inner tree nodes stored in the events' rows (32 bytes each), of one log or of all."""
    query = "SELECT coalesce(sum(length(e.tree_nodes)), 0) FROM ledger_events e JOIN ledger_logs l ON l.id = e.log_id"
    if log is None:
        return int(connection.execute(text(query)).scalar_one()) // 32
    return int(connection.execute(text(query + " WHERE l.origin = :log"), {"log": log}).scalar_one()) // 32


def _populate(engine: Engine, clock: ManualClock) -> int:
    """Network, slots, a user and two enrolments: a real ledger to attack. Returns its length."""
    seed(engine, clock, days=7)
    operator = add_user(engine, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    for mrn in ("MRN-1", "MRN-2"):
        clock.advance(timedelta(minutes=1))
        with SqlUnitOfWork(engine) as uow:
            enroll(
                uow,
                EnrollPatient(treatment_site="h-a", mrn=mrn, full_name="P", birth_date=date(1970, 1, 1)),
                operator,
                clock,
            )
    with SqlUnitOfWork(engine, write=False) as uow:
        size = uow.ledger.size()
        logs = uow.ledger.logs()
        report = verify_ledger(uow, AUDITOR)
    assert logs == POPULATED_LOGS
    with engine.connect() as connection:
        placed = connection.execute(
            text(
                "SELECT e.id, l.origin, e.seq FROM ledger_events e JOIN ledger_logs l ON l.id = e.log_id ORDER BY e.id"
            )
        ).all()
    assert [tuple(row) for row in placed] == [(id_, log, seq) for id_, log, seq, _ in POPULATED]
    assert (report.ok, report.logs, report.events, report.checkpoints, report.findings) == (True, 4, size, 0, [])
    return size


def test_database_refuses_update_and_delete_of_ledger_events(engine: Engine, clock: ManualClock) -> None:
    size = _populate(engine, clock)
    assert size == 7  # network registered, 3 x slots opened, user created, 2 enrolments
    nodes = sum(_tree_nodes(n) for n in POPULATED_LOGS.values())
    assert nodes == 3  # h-a's four leaves make two level-1 nodes and one level-2 node; the other logs hold one leaf
    h_a, h_b = (
        f"(SELECT id FROM ledger_logs WHERE origin = '{H_A_LOG}')",
        f"(SELECT id FROM ledger_logs WHERE origin = '{H_B_LOG}')",
    )
    statements = [
        "UPDATE ledger_events SET kind = 'order.moved' WHERE id = 2",
        "UPDATE ledger_events SET body = body WHERE id = 1",
        f"UPDATE ledger_events SET log_id = {h_b}, seq = 2 WHERE log_id = {h_a} AND seq = 4",
        f"UPDATE ledger_events SET tree_nodes = tree_nodes WHERE log_id = {h_a} AND seq = 4",
        f"DELETE FROM ledger_events WHERE log_id = {h_a} AND seq = 4",
        "DELETE FROM ledger_events",
        f"UPDATE ledger_logs SET origin = 'cellrail/elsewhere' WHERE id = {h_a}",
        "DELETE FROM ledger_logs",
    ]
    if engine.dialect.name == "postgresql":
        statements += ["TRUNCATE ledger_events", "TRUNCATE ledger_logs CASCADE"]
    for statement in statements:
        with engine.connect() as connection, pytest.raises(DBAPIError, match="the custody ledger is append-only"):
            connection.execute(text(statement))
    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.ledger.size() == 7
        assert uow.ledger.logs() == POPULATED_LOGS
        report = verify_ledger(uow, AUDITOR)
    with engine.connect() as connection:
        assert _stored_tree_nodes(connection) == nodes
    assert (report.ok, report.logs, report.events) == (True, 4, 7)


@pytest.mark.parametrize(
    ("log", "target_seq"),
    [
        pytest.param(NETWORK_LOG, 1, id="network-1"),  # the very first event
        pytest.param(HUB_LOG, 1, id="hub-1"),  # the only event of its log
        pytest.param(H_A_LOG, 2, id="h-a-2"),  # mid-log: the event before it still verifies
        pytest.param(H_A_LOG, 4, id="h-a-4"),  # the last event of the store
    ],
)
def test_attacker_bypassing_the_trigger_is_named_by_verify(
    engine: Engine, clock: ManualClock, log: str, target_seq: int
) -> None:
    size = _populate(engine, clock)
    where = {"l": log, "s": target_seq}
    with engine.connect() as connection:
        body = connection.execute(
            text(f"SELECT body FROM ledger_events WHERE {OF_LOG} AND seq = :s"), where
        ).scalar_one()
    body = bytes(body)
    assert b'"actor":"system"' in body or b'"actor":"op-a"' in body
    forged = body.replace(b'"actor":"system"', b'"actor":"mallory"').replace(b'"actor":"op-a"', b'"actor":"mallory"')
    assert forged != body
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change"))
        else:
            connection.execute(text("DROP TRIGGER ledger_events_no_update"))
        connection.execute(
            text(f"UPDATE ledger_events SET body = :b WHERE {OF_LOG} AND seq = :s"), {"b": forged, **where}
        )
    with SqlUnitOfWork(engine, write=False) as uow:
        report = verify_ledger(uow, AUDITOR)
    assert report.findings == [Finding("chain", log, target_seq, "content does not match its hash (altered)")]
    # Every other log verifies in full; in the altered log, the events before it.
    assert report.events == size - POPULATED_LOGS[log] + target_seq - 1
    assert (report.ok, report.logs, size) == (False, 4, 7)


def test_attacker_deleting_an_event_is_named_by_verify(engine: Engine, clock: ManualClock) -> None:
    _populate(engine, clock)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change"))
        else:
            connection.execute(text("DROP TRIGGER ledger_events_no_delete"))
        # The user created at h-a: the fifth event of the store, the second of h-a's log.
        connection.execute(text(f"DELETE FROM ledger_events WHERE {OF_LOG} AND seq = 2"), {"l": H_A_LOG})
    with SqlUnitOfWork(engine, write=False) as uow:
        report = verify_ledger(uow, AUDITOR)
    assert report.findings == [Finding("chain", H_A_LOG, 2, "event 2 is missing")]
    assert (report.ok, report.logs, report.events) == (False, 4, 4)  # network, h-b, hub and h-a's first event


def _changing_calls(cls: type) -> list[str]:
    """Every ``update(...)`` or ``delete(...)`` call in a class (SQLAlchemy's functions, ``Table.update()``,
    ``sqlalchemy.delete`` alike), except ``dict.update`` on a dict the same method created."""
    found = []
    for function in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(cls)))):
        if not isinstance(function, ast.FunctionDef):
            continue
        local_dicts: set[str] = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                local_dicts |= {target.id for target in targets if isinstance(target, ast.Name)}
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            dict_update = (
                name == "update"
                and isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in local_dicts
            )
            if name in ("update", "delete") and not dict_update:
                found.append(f"{function.name}: {ast.unparse(node)}")
    return found


def test_repositories_have_no_path_to_change_or_remove_events() -> None:
    public = {name for name, _ in inspect.getmembers(SqlLedger, inspect.isfunction) if not name.startswith("_")}
    assert public == {"head_for_append", "append", "subtrees", "for_order", "entry", "entries", "rows", "logs", "size"}
    assert _changing_calls(SqlLedger) == []
    module = inspect.getsource(repositories)
    assert "delete(" not in module
    assert "update(t.ledger_events" not in module
    assert "update(t.ledger_logs" not in module
    # SQL written as text that touches the ledger's tables only reads them.
    statements = [
        node.value
        for node in ast.walk(ast.parse(module))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if re.search(r"\b(ledger_events|ledger_logs)\b", node.value)
    ]
    assert statements  # e.g. the subtree lookups
    for statement in statements:
        assert not re.search(r"\b(update|delete|truncate|drop|alter|replace)\b", statement, re.IGNORECASE), statement


def test_events_of_one_order_at_two_sites_go_to_two_logs(engine: Engine, clock: ManualClock) -> None:
    """Each event goes to the log of the site where it happened, chained to that log alone; the order's events
    read back in the order they happened across both logs; the Merkle nodes written with each log's events give
    the root that the log's event bytes give when hashed from scratch."""
    seed(engine, clock, days=1)  # every log already holds an event: network registered, slots opened
    coi = "CHA100126000001K"

    def moved(node: str, actor: str, state: str) -> CustodyEvent:
        return CustodyEvent(EventKind.ORDER_MOVED, node, actor, "node_operator", clock.now(), coi, data={"to": state})

    def scan(node: str) -> CustodyEvent:
        return CustodyEvent(EventKind.CUSTODY_SCAN, node, "courier", "courier", clock.now(), coi, data={"n": node})

    batches = [
        [CustodyEvent(EventKind.ORDER_ENROLLED, "h-a", "op-a", "node_operator", clock.now(), coi)],
        [CustodyEvent(EventKind.ORDER_BOOKED, "h-a", "op-a", "node_operator", clock.now(), coi)],
        [moved("h-a", "op-a", "collected")],
        # One transaction with events at both sites, interleaved.
        [scan("h-a"), moved("hub", "op-hub", "received_at_manufacturing"), scan("hub"), scan("h-a")],
        [moved("hub", "op-hub", "manufacturing"), moved("hub", "op-hub", "qc_pending")],
        [moved("hub", "qp", "released")],
        [moved("hub", "op-hub", "shipped_to_site"), moved("h-a", "op-a", "received_at_site"), scan("h-a")],
    ]
    written = []
    for batch in batches:
        clock.advance(timedelta(hours=1))
        with SqlUnitOfWork(engine) as uow:
            written += record(uow, clock, *batch)
            uow.commit()
    expected = [
        (H_A_LOG, 2, "order.enrolled"),
        (H_A_LOG, 3, "order.booked"),
        (H_A_LOG, 4, "order.moved"),
        (H_A_LOG, 5, "custody.scan"),
        (HUB_LOG, 2, "order.moved"),
        (HUB_LOG, 3, "custody.scan"),
        (H_A_LOG, 6, "custody.scan"),
        (HUB_LOG, 4, "order.moved"),
        (HUB_LOG, 5, "order.moved"),
        (HUB_LOG, 6, "order.moved"),
        (HUB_LOG, 7, "order.moved"),
        (H_A_LOG, 7, "order.moved"),
        (H_A_LOG, 8, "custody.scan"),
    ]
    assert [(e.log, e.seq, e.content()["kind"]) for e in written] == expected
    assert [e.content()["log"] for e in written] == [e.log for e in written]
    sizes = {NETWORK_LOG: 1, H_A_LOG: 8, H_B_LOG: 1, HUB_LOG: 7}

    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.ledger.logs() == sizes
        assert uow.ledger.size() == 17
        history = uow.ledger.for_order(coi)
        assert [(e["log"], e["seq"], e["kind"]) for e in history] == expected  # insertion order, across logs
        assert [e["node"] for e in history] == [log.rsplit("/", 1)[1] for log, _, _ in expected]
        assert uow.ledger.entry(HUB_LOG, 3) == written[5].body
        assert uow.ledger.entry(HUB_LOG, 8) is None

        for log, size in sizes.items():
            rows = list(uow.ledger.rows(log))
            assert [row[0] for row in rows] == list(range(1, size + 1))
            report = verify_rows(rows, log)  # from genesis, this log's events alone
            assert (report.ok, report.checked, report.head_hash) == (True, size, rows[-1][4])
            leaves = [merkle.leaf_hash(bytes(row[3])) for row in rows]
            tree = StoredTree(uow, log)
            for prefix in range(size + 1):  # the nodes written at every append agree with a rebuild
                assert merkle.root(tree, prefix) == merkle.root_from_leaves(leaves[:prefix]), (log, prefix)
        # A log's events cannot pass for another's: the log is in the signed content.
        assert verify_rows(uow.ledger.rows(H_A_LOG), HUB_LOG).first_break == ChainBreak(
            1, "indexed columns differ from the signed content", HUB_LOG
        )
        audit = verify_ledger(uow, AUDITOR)
    assert (audit.ok, audit.logs, audit.events, audit.findings) == (True, 4, 17, [])
    with engine.connect() as connection:
        stored = {log: _stored_tree_nodes(connection, log) for log in sizes}
    assert stored == {log: _tree_nodes(size) for log, size in sizes.items()}  # one leaf: no inner node


@given(
    st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()),
)
@settings(max_examples=300, deadline=None)
def test_iso_utc_is_utc_with_microseconds_and_z(moment: datetime) -> None:
    text = iso_utc(moment)
    assert text == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert datetime.fromisoformat(text) == moment.astimezone(UTC)


def test_record_seals_exactly_as_seal_and_stores_the_tree_a_rebuild_gives(engine: Engine, clock: ManualClock) -> None:
    """record() writes the chain and Merkle formulas inline for speed; its entries must be those of
    ledger.seal, and the inner nodes it stores those of merkle.nodes_to_store, for every size up to 37."""
    seed(engine, clock, days=1)
    with SqlUnitOfWork(engine, write=False) as uow:
        size, head = uow.ledger.head_for_append(HUB_LOG)
    scans = [
        CustodyEvent(EventKind.CUSTODY_SCAN, "hub", "courier", "courier", clock.now(), data={"n": n, "t": n / 3})
        for n in range(37)
    ]
    written = []
    for batch in (scans[:1], scans[1:2], scans[2:9], scans[9:]):  # odd and even sizes, single and batched
        with SqlUnitOfWork(engine) as uow:
            written += record(uow, clock, *batch)
            uow.commit()
    assert written == seal(scans, size, head, clock.now(), HUB_LOG)
    memory = merkle.MemoryStore()
    with SqlUnitOfWork(engine, write=False) as uow:
        for row in uow.ledger.rows(HUB_LOG):
            memory.append(merkle.leaf_hash(bytes(row[3])))
        total = uow.ledger.logs()[HUB_LOG]
        stored = uow.ledger.subtrees(HUB_LOG, [(lv, i) for lv in range(1, 7) for i in range(total >> lv)])
    assert stored == {(lv, i): memory.perfect(lv, i) for lv in range(1, 7) for i in range(total >> lv)}


def test_record_refuses_to_append_over_a_missing_tree_node(engine: Engine, clock: ManualClock) -> None:
    """An append combines with stored frontier nodes; if one is gone, it must stop, not hash with a blank."""
    seed(engine, clock, days=1)
    scan = CustodyEvent(EventKind.CUSTODY_SCAN, "hub", "courier", "courier", clock.now())
    with SqlUnitOfWork(engine) as uow:
        size = uow.ledger.head_for_append(HUB_LOG)[0] + len(record(uow, clock, scan, scan))
        uow.commit()
    assert size == 3  # the frontier of 3 leaves: node (1, 0), carried by event 2, and leaf 2
    with engine.begin() as connection:  # someone with database access blanks event 2's tree nodes
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change"))
        else:
            connection.execute(text("DROP TRIGGER ledger_events_no_update"))
        connection.execute(
            text(f"UPDATE ledger_events SET tree_nodes = :blank WHERE {OF_LOG} AND seq = 2"),
            {"blank": b"", "l": HUB_LOG},
        )
    with SqlUnitOfWork(engine) as uow, pytest.raises(Conflict, match=r"tree node \(1, 0\) is missing from the store"):
        record(uow, clock, scan)
    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.ledger.logs()[HUB_LOG] == 3
