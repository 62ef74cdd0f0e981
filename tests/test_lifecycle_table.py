"""The lifecycle as a table: pure tests of ``lifecycle.apply`` / ``fold`` / ``mermaid`` (no store, no engine).

Every state is reached by folding hand-written events, so the tests also pin which histories are legal.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from delivery_sdk import (
    ChannelKind,
    ConsentMethod,
    Contact,
    ContactKind,
    DispatchStatus,
    IllegalTransition,
    ServiceMethod,
    TaskState,
)
from delivery_sdk.events import (
    EVENT_BY_TYPE,
    EVENT_TYPES,
    AddressSearchFailed,
    AddressUpdated,
    Cancelled,
    ConsentObjected,
    ConsentRecorded,
    ContactUpdated,
    DispatchDelivered,
    DispatchFailed,
    DispatchQueued,
    DispatchRead,
    DispatchSent,
    DispatchTimedOut,
    Enveloped,
    Event,
    FellBackToPost,
    Filed,
    Mailed,
    NeedsAttention,
    PostReturned,
    PostSigned,
    Printed,
    PrintRouted,
    PublicationStarted,
    ResumedByStaff,
    ReturnReason,
    Served,
    TaskCreated,
)
from delivery_sdk.lifecycle import TERMINAL, TRANSITIONS, Task, apply, fold, mermaid, new_task
from delivery_sdk.testing import make_party, make_request

TASK = "T-1"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
MOBILE = Contact(kind=ContactKind.MOBILE, value="13800138000")
ADDRESS = Contact(kind=ContactKind.POSTAL, value="湖北省宜昌市夷陵区小溪塔街道发展大道57号", division_code="420506")
NEW_MOBILE = Contact(kind=ContactKind.MOBILE, value="13912345678")
E_DISPATCH = "T-1.1"  # an electronic dispatch every state's task knows
P_DISPATCH = "T-1.2"  # the print/mail dispatch of the postal states

RECEIPTS: tuple[type[Event], ...] = (
    DispatchSent,
    DispatchDelivered,
    DispatchRead,
    DispatchFailed,
    DispatchTimedOut,
    Printed,
    Enveloped,
    Mailed,
    PostSigned,
    PostReturned,
    ConsentRecorded,  # a call's outcome: a fact like the receipts, recorded in every state
    ConsentObjected,  # the party refused e-service (Rules Art. 29(4)): a fact, recorded in every state
)
NON_RECEIPTS = tuple(cls for cls in EVENT_TYPES if cls not in RECEIPTS)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- one minimal event of every type -----------------------------------------------------------------------

Factory = Callable[[datetime, str], Event]

FACTORIES: dict[type[Event], Factory] = {
    TaskCreated: lambda t, d: TaskCreated(task_id=TASK, at=t, request=make_request(make_party("P-1"))),
    DispatchQueued: lambda t, d: DispatchQueued(
        task_id=TASK, at=t, dispatch_id=d, channel="sms", kind=ChannelKind.SMS, contact=MOBILE
    ),
    DispatchSent: lambda t, d: DispatchSent(task_id=TASK, at=t, dispatch_id=d, provider_ref="ref"),
    DispatchDelivered: lambda t, d: DispatchDelivered(task_id=TASK, at=t, dispatch_id=d, delivered_at=t),
    DispatchRead: lambda t, d: DispatchRead(task_id=TASK, at=t, dispatch_id=d, read_at=t),
    DispatchFailed: lambda t, d: DispatchFailed(task_id=TASK, at=t, dispatch_id=d, reason="bounced"),
    DispatchTimedOut: lambda t, d: DispatchTimedOut(task_id=TASK, at=t, dispatch_id=d),
    FellBackToPost: lambda t, d: FellBackToPost(task_id=TASK, at=t, reason="every electronic channel failed"),
    AddressUpdated: lambda t, d: AddressUpdated(task_id=TASK, at=t, contact=ADDRESS, source="household_registry"),
    AddressSearchFailed: lambda t, d: AddressSearchFailed(task_id=TASK, at=t, reason="no candidate"),
    ContactUpdated: lambda t, d: ContactUpdated(task_id=TASK, at=t, contact=NEW_MOBILE, source="staff"),
    PrintRouted: lambda t, d: PrintRouted(task_id=TASK, at=t, centre_id="PC-420100", reason="route key 420100"),
    Printed: lambda t, d: Printed(task_id=TASK, at=t, dispatch_id=d),
    Enveloped: lambda t, d: Enveloped(task_id=TASK, at=t, dispatch_id=d, enveloped_at=t),
    Mailed: lambda t, d: Mailed(task_id=TASK, at=t, dispatch_id=d, waybill="EMS0000000001CN"),
    PostSigned: lambda t, d: PostSigned(task_id=TASK, at=t, dispatch_id=d, signed_at=t),
    PostReturned: lambda t, d: PostReturned(
        task_id=TASK, at=t, dispatch_id=d, returned_at=t, reason=ReturnReason.ADDRESS_WRONG
    ),
    PublicationStarted: lambda t, d: PublicationStarted(task_id=TASK, at=t, published_at=t, reason="post failed"),
    Served: lambda t, d: Served(
        task_id=TASK, at=t, method=ServiceMethod.ELECTRONIC, basis="CPL Art. 90", effective_at=t, dispatch_id=d
    ),
    Filed: lambda t, d: Filed(task_id=TASK, at=t, record_id="T-1:proof"),
    Cancelled: lambda t, d: Cancelled(task_id=TASK, at=t, reason="withdrawn"),
    NeedsAttention: lambda t, d: NeedsAttention(task_id=TASK, at=t, reason="a person must decide"),
    ResumedByStaff: lambda t, d: ResumedByStaff(task_id=TASK, at=t, note="try again"),
    ConsentRecorded: lambda t, d: ConsentRecorded(
        task_id=TASK, at=t, method=ConsentMethod.PHONE, given_at=t, via_dispatch=d
    ),
    ConsentObjected: lambda t, d: ConsentObjected(task_id=TASK, at=t, objected_at=t, via_dispatch=d),
}


def event(cls: type[Event], minute: int = 500, dispatch_id: str = E_DISPATCH) -> Event:
    return FACTORIES[cls](at(minute), dispatch_id)


def queued_print(minute: int, dispatch_id: str = P_DISPATCH) -> DispatchQueued:
    return DispatchQueued(
        task_id=TASK,
        at=at(minute),
        dispatch_id=dispatch_id,
        channel="PC-420100",
        kind=ChannelKind.PRINT,
        contact=ADDRESS,
        centre_id="PC-420100",
    )


# -- a legal history leading to every state; each task knows E_DISPATCH ------------------------------------

_ELECTRONIC = [
    event(TaskCreated, 0),
    event(DispatchQueued, 1),
    event(DispatchSent, 2),
]
_POSTAL = [*_ELECTRONIC, event(DispatchFailed, 3), event(FellBackToPost, 4)]
_ROUTED = [*_POSTAL, event(PrintRouted, 5), queued_print(6), event(DispatchSent, 7, P_DISPATCH)]
_PRINTED = [*_ROUTED, event(Printed, 8, P_DISPATCH)]
_MAILED = [*_PRINTED, event(Mailed, 9, P_DISPATCH)]
_NEEDS_ATTENTION = [*_POSTAL, event(NeedsAttention, 5)]
_SERVED = [*_ELECTRONIC, event(DispatchDelivered, 3), event(Served, 4)]

PATHS: dict[TaskState, list[Event]] = {
    # Back to CREATED after a person resumed it: the earlier round's dispatch stays known.
    TaskState.CREATED: [*_NEEDS_ATTENTION, event(ResumedByStaff, 6)],
    TaskState.ELECTRONIC: _ELECTRONIC,
    TaskState.POSTAL: _POSTAL,
    TaskState.ROUTED: _ROUTED,
    TaskState.PRINTED: _PRINTED,
    TaskState.MAILED: _MAILED,
    TaskState.RETURNED: [*_MAILED, event(PostReturned, 10, P_DISPATCH)],
    TaskState.PUBLISHING: [*_POSTAL, event(PublicationStarted, 5)],
    TaskState.SERVED: _SERVED,
    TaskState.FILED: [*_SERVED, event(Filed, 5)],
    TaskState.CANCELLED: [*_ELECTRONIC, event(Cancelled, 3)],
    TaskState.NEEDS_ATTENTION: _NEEDS_ATTENTION,
}


@functools.cache
def task_in(state: TaskState) -> Task:
    task = fold(PATHS[state])
    assert task.state is state
    return task


def _illegal_pairs() -> list[tuple[TaskState, type[Event]]]:
    return [(s, cls) for s in TaskState for cls in EVENT_TYPES if (s, cls.TYPE) not in TRANSITIONS]


def test_factories_cover_every_event_type() -> None:
    assert set(FACTORIES) == set(EVENT_TYPES)
    for cls in EVENT_TYPES:
        built = event(cls)
        assert type(built) is cls
        assert built.TYPE == cls.TYPE


def test_paths_cover_every_state() -> None:
    assert set(PATHS) == set(TaskState)
    for state in TaskState:
        assert task_in(state).dispatch(E_DISPATCH) is not None


def test_the_table_leaves_something_illegal_in_every_state() -> None:
    # Guard against a table that says yes to everything (the parametrized test below would be empty).
    illegal_states = {s for s, _ in _illegal_pairs()}
    assert illegal_states == set(TaskState)
    assert all((s, TaskCreated.TYPE) not in TRANSITIONS for s in TaskState)


@pytest.mark.parametrize(("state", "cls"), _illegal_pairs(), ids=[f"{s.value}-{c.TYPE}" for s, c in _illegal_pairs()])
def test_event_not_in_the_table_raises_naming_state_and_event(state: TaskState, cls: type[Event]) -> None:
    task = task_in(state)
    with pytest.raises(IllegalTransition) as excinfo:
        apply(task, event(cls))
    err = excinfo.value
    assert err.state == state.value
    assert err.event_type == cls.TYPE
    assert err.task_id == TASK
    assert str(err) == f"task {TASK} in state {state.value!r} cannot take event {cls.TYPE!r}"


@pytest.mark.parametrize(
    ("state", "etype"),
    [(s, t) for (s, t), to in TRANSITIONS.items() if isinstance(to, TaskState) and t not in {c.TYPE for c in RECEIPTS}],
    ids=lambda v: v.value if isinstance(v, TaskState) else v,
)
def test_event_in_the_table_moves_to_the_listed_state(state: TaskState, etype: str) -> None:
    cls = EVENT_BY_TYPE[etype]
    after = apply(task_in(state), event(cls, dispatch_id="T-1.99" if cls is DispatchQueued else E_DISPATCH))
    assert after.state is TRANSITIONS[(state, etype)]
    assert after.version == task_in(state).version + 1
    assert after.updated_at == at(500)


@pytest.mark.parametrize("state", sorted(TERMINAL, key=lambda s: s.value), ids=lambda s: s.value)
@pytest.mark.parametrize("cls", NON_RECEIPTS, ids=lambda c: c.TYPE)
def test_terminal_states_take_no_new_non_receipt_events(state: TaskState, cls: type[Event]) -> None:
    with pytest.raises(IllegalTransition, match=re.escape(f"in state {state.value!r} cannot take event")):
        apply(task_in(state), event(cls, dispatch_id="T-1.99"))


@pytest.mark.parametrize("state", sorted(TERMINAL, key=lambda s: s.value), ids=lambda s: s.value)
@pytest.mark.parametrize("cls", RECEIPTS, ids=lambda c: c.TYPE)
def test_terminal_states_record_late_receipts_without_moving(state: TaskState, cls: type[Event]) -> None:
    task = task_in(state)
    after = apply(task, event(cls))
    assert after.state is state
    assert after.version == task.version + 1


@pytest.mark.parametrize("state", list(TaskState), ids=lambda s: s.value)
@pytest.mark.parametrize("cls", RECEIPTS, ids=lambda c: c.TYPE)
def test_receipt_for_an_unknown_dispatch_raises(state: TaskState, cls: type[Event]) -> None:
    with pytest.raises(IllegalTransition) as excinfo:
        apply(task_in(state), event(cls, dispatch_id="T-1.404"))
    assert excinfo.value.state == state.value
    assert excinfo.value.event_type == f"{cls.TYPE} for unknown dispatch T-1.404"


def test_task_created_is_only_ever_the_first_event() -> None:
    with pytest.raises(IllegalTransition, match=re.escape("cannot take event 'task.created'")):
        apply(task_in(TaskState.ELECTRONIC), event(TaskCreated))
    with pytest.raises(IllegalTransition, match=re.escape("in state '(none)' cannot take event 'dispatch.sent'")):
        fold([event(DispatchSent)])
    with pytest.raises(IllegalTransition, match=re.escape("cannot take event 'nothing'")):
        fold([])


def test_event_of_another_task_is_refused() -> None:
    other = attrs.evolve(event(DispatchSent), task_id="T-2")
    with pytest.raises(IllegalTransition, match=re.escape("dispatch.sent of task T-2")):
        apply(task_in(TaskState.ELECTRONIC), other)


# -- guarded rows --------------------------------------------------------------------------------------------


def test_queueing_guard_electronic_before_post_and_print_only_when_routed() -> None:
    created = new_task(event(TaskCreated, 0))  # type: ignore[arg-type]
    assert apply(created, event(DispatchQueued, 1)).state is TaskState.ELECTRONIC
    with pytest.raises(IllegalTransition) as excinfo:
        apply(created, queued_print(1))
    assert excinfo.value.event_type == "dispatch.queued(print)"

    routed = fold(_ROUTED[:-2])  # routed, no print job yet
    assert routed.state is TaskState.ROUTED
    with_job = apply(routed, queued_print(6))
    assert with_job.state is TaskState.ROUTED
    assert with_job.postal_dispatch_id == P_DISPATCH
    assert with_job.postal_rounds == 1
    with pytest.raises(IllegalTransition) as excinfo:
        apply(routed, event(DispatchQueued, 6, "T-1.3"))
    assert excinfo.value.event_type == "dispatch.queued(sms)"
    assert excinfo.value.state == "routed"


def test_postal_progress_moves_the_state_only_for_the_current_print_dispatch() -> None:
    # An old electronic dispatch's late "failed" receipt while routed is recorded but does not un-route.
    routed = task_in(TaskState.ROUTED)
    stale = apply(routed, event(DispatchFailed, 20, E_DISPATCH))
    assert stale.state is TaskState.ROUTED
    assert stale.centre_id == "PC-420100"

    # The current print job refused: back to POSTAL, the centre forgotten so another is chosen.
    refused = apply(routed, event(DispatchFailed, 20, P_DISPATCH))
    assert refused.state is TaskState.POSTAL
    assert refused.centre_id is None
    assert refused.dispatch(P_DISPATCH).status is DispatchStatus.FAILED  # type: ignore[union-attr]

    assert apply(routed, event(Printed, 20, P_DISPATCH)).state is TaskState.PRINTED
    assert apply(routed, event(Mailed, 20, P_DISPATCH)).state is TaskState.MAILED  # print report skipped
    mailed = task_in(TaskState.MAILED)
    assert apply(mailed, event(PostReturned, 20, P_DISPATCH)).state is TaskState.RETURNED
    assert apply(mailed, event(PostSigned, 20, P_DISPATCH)).state is TaskState.MAILED  # the policy serves


def test_returned_records_the_return_and_the_tried_address() -> None:
    returned = task_in(TaskState.RETURNED)
    assert returned.last_return_reason is ReturnReason.ADDRESS_WRONG
    assert returned.last_return_at == at(10)
    assert returned.tried_addresses == (ADDRESS.value,)
    assert returned.dispatch(P_DISPATCH).status is DispatchStatus.RETURNED  # type: ignore[union-attr]
    again = apply(returned, event(AddressUpdated, 11))
    assert again.state is TaskState.POSTAL
    assert again.centre_id is None


def test_contact_update_guard_resumes_a_stuck_task_and_keeps_an_item_in_the_post_where_it_is() -> None:
    phone = event(ContactUpdated, 20)
    address = ContactUpdated(task_id=TASK, at=at(20), contact=ADDRESS, source="staff")
    stuck = task_in(TaskState.NEEDS_ATTENTION)
    resumed = apply(stuck, phone)
    assert resumed.state is TaskState.CREATED  # from the start, electronic first (as task.resumed)
    assert resumed.attention_reason is None
    assert resumed.electronic_from == len(stuck.dispatches)
    assert resumed.first_contact(ContactKind.MOBILE) == NEW_MOBILE
    assert ContactKind.MOBILE in resumed.reachable
    assert apply(stuck, address).state is TaskState.POSTAL
    returned = task_in(TaskState.RETURNED)
    assert apply(returned, phone).state is TaskState.RETURNED  # the next waybill carries it
    assert apply(returned, address).state is TaskState.POSTAL
    for state in (TaskState.ROUTED, TaskState.PRINTED, TaskState.MAILED):
        assert apply(task_in(state), phone).state is state
        with pytest.raises(IllegalTransition) as excinfo:
            apply(task_in(state), address)
        assert excinfo.value.event_type == "contact.updated(postal)"
    for state in (TaskState.CREATED, TaskState.ELECTRONIC, TaskState.POSTAL):
        assert apply(task_in(state), phone).state is state


def test_a_replaced_contact_is_no_longer_the_partys() -> None:
    created = new_task(event(TaskCreated, 0))  # type: ignore[arg-type]
    old = created.first_contact(ContactKind.MOBILE)
    assert old is not None
    replaced = apply(created, ContactUpdated(task_id=TASK, at=at(1), contact=NEW_MOBILE, source="staff", replaces=old))
    assert replaced.contacts_of(ContactKind.MOBILE) == (NEW_MOBILE,)
    assert replaced.contacts_retired == (old,)
    # replacing it back un-retires the old one and retires the new
    back = apply(replaced, ContactUpdated(task_id=TASK, at=at(2), contact=old, source="staff", replaces=NEW_MOBILE))
    assert back.contacts_of(ContactKind.MOBILE) == (old,)
    assert ContactKind.MOBILE in back.reachable
    gone = apply(created, ContactUpdated(task_id=TASK, at=at(1), contact=ADDRESS, source="staff"))
    assert gone.postal_address == ADDRESS


# -- fold ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(TaskState), ids=lambda s: s.value)
def test_fold_equals_step_by_step_apply(state: TaskState) -> None:
    events = PATHS[state]
    task = new_task(events[0])  # type: ignore[arg-type]
    versions = [task.version]
    for e in events[1:]:
        task = apply(task, e)
        versions.append(task.version)
    assert fold(events) == task
    assert versions == list(range(1, len(events) + 1))
    assert task.created_at == events[0].at
    assert task.updated_at == events[-1].at


def test_fold_of_a_full_history_tracks_every_dispatch() -> None:
    events = [
        *PATHS[TaskState.RETURNED],
        event(AddressUpdated, 11),
        event(PrintRouted, 12),
        queued_print(13, "T-1.3"),
        event(DispatchSent, 14, "T-1.3"),
        event(Mailed, 15, "T-1.3"),
        event(PostSigned, 16, "T-1.3"),
        Served(
            task_id=TASK,
            at=at(17),
            method=ServiceMethod.POSTAL,
            basis="CPL Art. 91",
            effective_at=at(16),
            dispatch_id="T-1.3",
        ),
        event(Filed, 18),
    ]
    task = fold(events)
    assert task.state is TaskState.FILED
    assert [(d.dispatch_id, d.kind, d.status) for d in task.dispatches] == [
        (E_DISPATCH, ChannelKind.SMS, DispatchStatus.FAILED),
        (P_DISPATCH, ChannelKind.PRINT, DispatchStatus.RETURNED),
        ("T-1.3", ChannelKind.PRINT, DispatchStatus.DELIVERED),
    ]
    assert task.postal_rounds == 2
    assert task.postal_dispatch_id == "T-1.3"
    assert task.served_method is ServiceMethod.POSTAL
    assert task.served_at == at(16)
    assert task.served_dispatch_id == "T-1.3"
    assert task.record_id == "T-1:proof"
    assert task.version == len(events)


# -- mermaid ---------------------------------------------------------------------------------------------------

_EDGE = re.compile(r"^    (\S+) --> (\S+?)(?:: (.+))?$")


def _edges() -> dict[tuple[str, str], set[str]]:
    lines = mermaid().splitlines()
    edges: dict[tuple[str, str], set[str]] = {}
    for line in lines[1:]:
        match = _EDGE.match(line)
        assert match, f"not an edge line: {line!r}"
        frm, to, types = match.groups()
        edges[(frm, to)] = set(types.split(", ")) if types else set()
    return edges


def test_mermaid_is_a_state_diagram_with_start_and_terminal_states() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2\n")
    edges = _edges()
    assert ("[*]", "created") in edges
    for state in TERMINAL:
        assert (state.value, "[*]") in edges
    assert all(frm != to for frm, to in edges)  # self-loops (receipts, address updates) are left out


def test_mermaid_has_every_non_self_transition_of_the_table() -> None:
    edges = _edges()
    for (state, etype), to in TRANSITIONS.items():
        if isinstance(to, TaskState) and to is not state:
            assert etype in edges.get((state.value, to.value), set()), f"{state.value} --{etype}--> {to.value}"
    # Rows decided by a guard, with the targets the guard can reach.
    guarded = {
        ("created", "electronic"): "dispatch.queued",
        ("routed", "postal"): "dispatch.failed",
        ("routed", "printed"): "print.printed",
        ("routed", "mailed"): "post.mailed",
        ("printed", "mailed"): "post.mailed",
        ("mailed", "returned"): "post.returned",
        ("needs_attention", "created"): "task.resumed",
        ("needs_attention", "served"): "task.resumed",
        ("needs_attention", "postal"): "contact.updated",
        ("returned", "postal"): "contact.updated",
    }
    for edge, etype in guarded.items():
        assert etype in edges[edge]
    targets = {to.value for (s, _), to in TRANSITIONS.items() if isinstance(to, TaskState) and to is not s}
    targets |= {to for _, to in guarded}
    assert targets == {s.value for s in TaskState}  # every state is reachable in the diagram
    for target in targets:
        assert f"--> {target}" in mermaid()
