"""The canonical leaf bytes of committed events, and the standalone verifier's independence from the SDK."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import delivery_sdk.evidence.verify as verify_module
from delivery_sdk import ChannelKind, Contact, ContactKind
from delivery_sdk.events import (
    AddressUpdated,
    Cancelled,
    DispatchFailed,
    DispatchQueued,
    Event,
    Filed,
    StoredEvent,
    TaskCreated,
)
from delivery_sdk.evidence import (
    LEAF_INPUT_PREFIX,
    MerkleLog,
    VerificationError,
    event_leaf_input,
    leaf_bytes,
    leaf_hash,
    leaf_hashes,
    stored_event_leaf_hash,
)
from delivery_sdk.evidence.canonical import body_leaf_hash, body_leaf_state
from delivery_sdk.serialization import encode_event, event_body, event_to_dict, loads
from delivery_sdk.testing import make_party, make_request

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 26, 9, 30, tzinfo=CST)
ADDRESS = Contact(kind=ContactKind.POSTAL, value="湖北省宜昌市夷陵区小溪塔街道发展大道57号", division_code="420506")

EVENTS: list[Event] = [
    TaskCreated(task_id="T1", at=T0, request=make_request(make_party(eservice="acct-1"))),
    DispatchQueued(
        task_id="T1",
        at=T0,
        dispatch_id="T1.1",
        channel="sms",
        kind=ChannelKind.SMS,
        contact=Contact(kind=ContactKind.MOBILE, value="13912345678"),
    ),
    DispatchFailed(
        task_id="T1", at=T0, dispatch_id="T1.1", reason='号码不存在\n\t"quoted" \\ \x01', provider_event_id="e"
    ),
    AddressUpdated(task_id="T1", at=T0, contact=ADDRESS, source="household_registry", confidence=0.75),
    AddressUpdated(task_id="T1", at=T0, contact=ADDRESS, source="registry", confidence=1e-05),
    Filed(task_id="T1", at=datetime(2026, 11, 27, tzinfo=UTC), record_id="T1:proof", filed_by=("a", "b")),
    Cancelled(task_id="T1", at=T0, reason="案件已撤诉 😀 \u2028"),
]


def _stored(events: list[Event]) -> list[StoredEvent]:
    return [StoredEvent(seq=i + 1, task_seq=i + 1, event=e) for i, e in enumerate(events)]


def test_leaf_bytes_are_the_documented_encoding() -> None:
    stored = StoredEvent(seq=7, task_seq=3, event=Cancelled(task_id="T9", at=T0, reason="撤诉"))
    expected = (
        b"delivery-sdk/event/v1\n"
        + '{"event":{"at":"2026-11-26T09:30:00+08:00","reason":"撤诉","task_id":"T9","type":"task.cancelled"},'.encode()
        + b'"seq":7,"task_seq":3}'
    )
    assert event_to_dict(stored.event)["type"] == "task.cancelled"
    assert leaf_bytes(stored) == expected
    assert stored_event_leaf_hash(stored) == hashlib.sha256(b"\x00" + expected).digest()


@pytest.mark.parametrize("stored", _stored(EVENTS), ids=lambda s: f"{s.seq}-{s.event.TYPE}")
def test_fast_path_equals_the_stdlib_reference(stored: StoredEvent) -> None:
    """An independent verifier recomputes the bytes from the event's JSON with nothing but the stdlib."""
    as_stored = json.loads(json.dumps(event_to_dict(stored.event), ensure_ascii=False))
    reference = event_leaf_input(stored.seq, stored.task_seq, as_stored)
    assert leaf_bytes(stored) == reference
    assert leaf_bytes(stored, event_to_dict(stored.event)) == reference
    assert reference.startswith(LEAF_INPUT_PREFIX)
    assert json.loads(reference[len(LEAF_INPUT_PREFIX) :]) == {
        "event": as_stored,
        "seq": stored.seq,
        "task_seq": stored.task_seq,
    }


@pytest.mark.parametrize("stored", _stored(EVENTS), ids=lambda s: f"{s.seq}-{s.event.TYPE}")
def test_the_stored_body_hashes_to_the_same_leaf(stored: StoredEvent) -> None:
    """Stores keep bodies in canonical key order and hash them inside the fixed frame, never re-encoding."""
    at, body = encode_event(stored.event)
    assert body.decode() == event_body(stored.event)
    assert at == event_to_dict(stored.event)["at"]
    assert loads(body) == event_to_dict(stored.event)
    expected = stored_event_leaf_hash(stored)
    assert body_leaf_hash(type(stored.event), stored.seq, stored.task_seq, body) == expected
    state = body_leaf_state(type(stored.event), stored.task_seq, body)
    if state is None:  # can hold a float: the reference encoder decides, once the seq is known
        assert type(stored.event) is AddressUpdated
    else:
        state.update(b',"seq":%d,"task_seq":%d}' % (stored.seq, stored.task_seq))
        assert state.digest() == expected


def test_stored_bodies_have_their_keys_sorted_at_every_level() -> None:
    body = event_body(EVENTS[0])
    assert body.startswith('{"at":"2026-11-26T09:30:00+08:00","request":{"case":{"case_number":')
    assert json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False) == body


def test_small_floats_are_written_as_python_writes_them() -> None:
    stored = _stored(EVENTS)[4]
    assert b'"confidence":1e-05' in leaf_bytes(stored)


def test_text_stays_utf8_and_only_json_escapes_are_used() -> None:
    data = leaf_bytes(_stored(EVENTS)[2])
    assert "号码不存在".encode() in data
    assert b'\\n\\t\\"quoted\\" \\\\ \\u0001' in data


def test_seq_and_task_seq_are_bound_into_the_leaf() -> None:
    event = EVENTS[5]
    hashes = {stored_event_leaf_hash(StoredEvent(seq=s, task_seq=t, event=event)) for s, t in [(1, 1), (2, 1), (1, 2)]}
    assert len(hashes) == 3


def test_leaf_hashes_build_a_tree_a_verifier_can_check() -> None:
    stored = _stored(EVENTS)
    log = MerkleLog()
    log.append_many(leaf_hashes(stored))
    for i, s in enumerate(stored):
        recomputed = leaf_hash(event_leaf_input(s.seq, s.task_seq, json.loads(json.dumps(event_to_dict(s.event)))))
        log.inclusion_proof(i).verify(recomputed, log.root())


def test_reference_refuses_what_cannot_be_canonical() -> None:
    with pytest.raises(VerificationError):
        event_leaf_input(1, 1, {"x": float("nan")})
    with pytest.raises(VerificationError):
        event_leaf_input(1, 1, {"x": "\ud800"})
    with pytest.raises(VerificationError):
        event_leaf_input("1", 1, {})  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        event_leaf_input(1, 1, [])  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    reason=st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    confidence=st.floats(min_value=0, max_value=1, allow_nan=False),
    seq=st.integers(min_value=1, max_value=2**53),
)
def test_fast_path_equals_reference_for_any_text_and_float(reason: str, confidence: float, seq: int) -> None:
    for event in [
        DispatchFailed(task_id="T1", at=T0, dispatch_id="T1.1", reason=reason),
        AddressUpdated(task_id="T1", at=T0, contact=ADDRESS, source=reason or "x", confidence=confidence),
    ]:
        stored = StoredEvent(seq=seq, task_seq=1, event=event)
        as_stored = json.loads(json.dumps(event_to_dict(event)))
        assert leaf_bytes(stored) == event_leaf_input(seq, 1, as_stored)


# --- the verifier stands alone ---------------------------------------------------------------------------------

STDLIB_ONLY = {"__future__", "base64", "binascii", "hashlib", "json", "collections.abc", "dataclasses", "typing"}


def test_verify_module_imports_only_the_standard_library_at_top_level() -> None:
    tree = ast.parse(Path(verify_module.__file__).read_text("utf-8"))
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            top.add(node.module or "")
    assert top <= STDLIB_ONLY, top - STDLIB_ONLY


def test_verify_module_runs_as_a_copied_file_without_the_sdk(tmp_path: Path) -> None:
    log = MerkleLog()
    log.append_data([b"a", b"b", b"c", b"d", b"e"])
    bundle = {
        "leaf": "c",
        "proof": log.inclusion_proof(2).to_dict(),
        "consistency": log.consistency_proof(3).to_dict(),
        "root3": log.root(3).hex(),
        "root": log.root().hex(),
    }
    copy = tmp_path / "verify_copy.py"
    copy.write_text(Path(verify_module.__file__).read_text("utf-8"), "utf-8")
    script = f"""
import json, sys
sys.path.insert(0, {str(tmp_path)!r})
import verify_copy as v
b = json.loads({json.dumps(json.dumps(bundle))})
v.InclusionProof.from_dict(b["proof"]).verify(v.leaf_hash(b["leaf"].encode()), bytes.fromhex(b["root"]))
v.ConsistencyProof.from_dict(b["consistency"]).verify(bytes.fromhex(b["root3"]), bytes.fromhex(b["root"]))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("delivery_sdk", "cryptography", "attrs", "orjson"))
print("ok", loaded)
"""
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok []"
