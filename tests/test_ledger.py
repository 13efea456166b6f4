"""The custody ledger: sealing and re-walking the hash chain, detection of every kind of tampering, and the
database refusing to change or remove events (SQLite and PostgreSQL).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import Principal, Role
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
from cellrail.rail.services import EnrollPatient, enroll, verify_ledger
from cellrail.store import repositories
from cellrail.store.repositories import SqlLedger
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import add_user, seed

RECORDED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AUDITOR = Principal("aud", "Aud", "hub", frozenset({Role.AUDITOR}))

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
    body = encode(event, 7, RECORDED)
    assert (
        body
        == (
            '{"actor":"qp","at":"2026-03-20T01:02:03.000004Z","data":{"from":"qc_pending","note":"é","to":"released"},'
            '"item":"A100326000001Q","kind":"order.moved","node":"hub","order":"CHA100126000001K",'
            '"recorded_at":"2026-03-02T12:00:00.000000Z","role":"qualified_person","seq":7,'
            '"signatures":[{"at":"2026-03-20T01:02:03.000000Z","full_name":"Q P","meaning":"approved","user":"qp"}]}'
        ).encode()
    )
    head = hashlib.sha256(b"head").digest()
    [entry] = seal([event], 6, head, RECORDED)
    assert entry == LedgerEntry(7, body, hashlib.sha256(head + body).digest())
    assert link(head, body) == entry.hash
    assert entry.content()["seq"] == 7


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
        report = verify_ledger(uow, AUDITOR)
    assert report.ok
    assert report.checked == size
    return size


def test_database_refuses_update_and_delete_of_ledger_events(engine: Engine, clock: ManualClock) -> None:
    size = _populate(engine, clock)
    assert size == 7  # network registered, 3 x slots opened, user created, 2 enrolments
    statements = [
        "UPDATE ledger_events SET kind = 'order.moved' WHERE seq = 2",
        "UPDATE ledger_events SET body = body WHERE seq = 1",
        "DELETE FROM ledger_events WHERE seq = 7",
        "DELETE FROM ledger_events",
    ]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE ledger_events")
    for statement in statements:
        with engine.connect() as connection, pytest.raises(DBAPIError, match="the custody ledger is append-only"):
            connection.execute(text(statement))
    with SqlUnitOfWork(engine, write=False) as uow:
        assert uow.ledger.size() == 7
        report = verify_ledger(uow, AUDITOR)
    assert report.ok
    assert report.checked == 7


@pytest.mark.parametrize("target_seq", [1, 4, 7])
def test_attacker_bypassing_the_trigger_is_named_by_verify(engine: Engine, clock: ManualClock, target_seq: int) -> None:
    size = _populate(engine, clock)
    with engine.connect() as connection:
        body = connection.execute(text("SELECT body FROM ledger_events WHERE seq = :s"), {"s": target_seq}).scalar_one()
    body = bytes(body)
    assert b'"actor":"system"' in body or b'"actor":"op-a"' in body
    forged = body.replace(b'"actor":"system"', b'"actor":"mallory"').replace(b'"actor":"op-a"', b'"actor":"mallory"')
    assert forged != body
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change"))
        else:
            connection.execute(text("DROP TRIGGER ledger_events_no_update"))
        connection.execute(text("UPDATE ledger_events SET body = :b WHERE seq = :s"), {"b": forged, "s": target_seq})
    with SqlUnitOfWork(engine, write=False) as uow:
        report = verify_ledger(uow, AUDITOR)
    assert report.first_break == ChainBreak(target_seq, "content does not match its hash (altered)")
    assert report.checked == target_seq - 1
    assert size == 7


def test_attacker_deleting_an_event_is_named_by_verify(engine: Engine, clock: ManualClock) -> None:
    _populate(engine, clock)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change"))
        else:
            connection.execute(text("DROP TRIGGER ledger_events_no_delete"))
        connection.execute(text("DELETE FROM ledger_events WHERE seq = 5"))
    with SqlUnitOfWork(engine, write=False) as uow:
        report = verify_ledger(uow, AUDITOR)
    assert report.first_break == ChainBreak(5, "event 5 is missing")


def test_repositories_have_no_path_to_change_or_remove_events() -> None:
    public = {name for name, _ in inspect.getmembers(SqlLedger, inspect.isfunction) if not name.startswith("_")}
    assert public == {"head_for_append", "append", "for_order", "rows", "size"}
    source = inspect.getsource(SqlLedger)
    assert "update(" not in source
    assert "delete(" not in source
    module = inspect.getsource(repositories)
    assert "delete(" not in module
    assert "update(t.ledger_events" not in module
