"""One centre, many courts (issue 20): actors, roles, court scope, and the record of who looked.

Two courts share one store: 武昌 (鄂0106) and 洪山 (鄂0111). A clerk of one cannot read or change the other's
tasks through any client method or CLI command; a supervisor sees figures but no personal data; every read of
personal data leaves an access record, and ``verify`` finds an edited or deleted one.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from delivery_sdk import (
    AccessDenied,
    Actor,
    Contact,
    ContactKind,
    DeliveryClient,
    InvalidRequest,
    Permission,
    UnknownTask,
    ValidationError,
)
from delivery_sdk.access import (
    LOCAL_ACTOR,
    check_court,
    court_code,
    load_roles,
    parse_actor,
    roles_with,
)
from delivery_sdk.channels import Receipt, ReceiptKind
from delivery_sdk.cli import main
from delivery_sdk.clock import VirtualClock
from delivery_sdk.evidence.audit import verify_store
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.model import Case
from delivery_sdk.supervision import Supervisor, write_report
from delivery_sdk.testing import make_party, make_request

WUCHANG, HONGSHAN = "鄂0106", "鄂0111"
NAME_A, NAME_B = "张三丰", "李四光"
PHONE_A, PHONE_B = "13912345678", "13787654321"
ADDRESS_A, ADDRESS_B = "湖北省武汉市武昌区中北路88号", "湖北省武汉市洪山区珞喻路99号"

CLERK_A = Actor(staff_id="c0106-01", role="clerk", courts=WUCHANG, name="王书记员")
CLERK_B = Actor(staff_id="c0111-01", role="clerk", courts=HONGSHAN)
OPERATOR = Actor(staff_id="op-01", role="operator", courts="*")
SUPERVISOR = Actor(staff_id="sup-01", role="supervisor", courts="鄂")
SIGNER = Signer.generate("o")
AUDITOR = Actor(staff_id="aud-01", role="auditor", courts="*")


def _request(court: str, n: int, name: str, phone: str, address: str) -> Any:
    party = attrs.evolve(make_party(f"P{n}", mobile=phone, address=address), name=name)
    return make_request(party, case_number=f"(2026){court}民初{n}号", court=f"法院{court}", client_key=f"k{n}")


@pytest.fixture
def two_courts(tmp_path: Path) -> Iterator[tuple[DeliveryClient, str, str]]:
    """A store with one task of each court; the client acts as the local default."""
    clock = VirtualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    client = DeliveryClient(tmp_path / "s.sqlite3", clock=clock, load_entry_points=False)
    a = client.submit(_request(WUCHANG, 1, NAME_A, PHONE_A, ADDRESS_A))
    b = client.submit(_request(HONGSHAN, 2, NAME_B, PHONE_B, ADDRESS_B))
    client.store.checkpoint("o", [SIGNER], clock.now())  # type: ignore[attr-defined]
    yield client, a, b
    client.close()


def _dump(client: DeliveryClient) -> list[tuple[Any, ...]]:
    """Every task row and event: what a refused call must leave as it was."""
    db = sqlite3.connect(client.store.path)  # type: ignore[attr-defined]
    try:
        return [
            *db.execute("SELECT * FROM tasks ORDER BY task_id").fetchall(),
            *db.execute("SELECT seq, body FROM events ORDER BY seq").fetchall(),
        ]
    finally:
        db.close()


# -- courts and actors ---------------------------------------------------------------------------------------


def test_the_court_is_read_from_the_case_number_and_validated() -> None:
    assert court_code("(2026)鄂0106民初1234号") == "鄂0106"
    assert court_code("（2026）鄂01民终7号") == "鄂01"
    assert court_code("(2026)鄂民申3号") == "鄂"
    assert court_code("C-1") is None
    assert court_code("(2026)鄂01061民初1号") is None  # an odd number of digits is no court code
    assert check_court("鄂0106") == "鄂0106"
    with pytest.raises(ValidationError, match="not a court code"):
        check_court("Wuchang")


def test_a_task_without_a_court_code_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with DeliveryClient(tmp_path / "s.sqlite3", load_entry_points=False) as client:
        request = make_request(case_number="案件-1", client_key="x")
        with pytest.raises(InvalidRequest, match="carries no court code"):
            client.submit(request)
        assert client.count_by_state() == {}


def test_every_task_is_stored_with_its_court(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, a, b = two_courts
    assert client.store.task_row(a).court == WUCHANG
    assert client.store.task_row(b).court == HONGSHAN


def test_actors_are_validated_and_parsed() -> None:
    assert parse_actor("clerk:c0106-01@鄂0106/王书记员") == Actor(
        staff_id="c0106-01", role="clerk", courts=WUCHANG, name="王书记员"
    )
    assert parse_actor("local") is LOCAL_ACTOR
    assert parse_actor("supervisor:s1@*").all_courts
    for bad, fragment in [
        ("clerk-c1", "role:staff_id@courts"),
        ("judge:c1@鄂0106", "unknown role 'judge'"),
        ("clerk:c1@Wuchang", "not a court code"),
        ("clerk:@鄂0106", "staff_id"),
    ]:
        with pytest.raises(ValidationError, match=fragment):
            parse_actor(bad)
    with pytest.raises(ValidationError, match="at least one court"):
        Actor(staff_id="x", role="clerk", courts=())
    # a court code covers the courts under it
    assert SUPERVISOR.covers(WUCHANG)
    assert not CLERK_A.covers(HONGSHAN)
    assert not CLERK_A.covers("")


def test_roles_are_extended_by_configuration(tmp_path: Path) -> None:
    roles_file = tmp_path / "roles.toml"
    roles_file.write_text('[roles]\nregistrar = ["read", "statistics"]\n', encoding="utf-8")
    roles = load_roles(roles_file)
    registrar = parse_actor("registrar:r1@鄂0106", roles)
    assert registrar.can(Permission.READ)
    assert not registrar.can(Permission.PERSONAL)
    assert roles["clerk"] == roles_with({})["clerk"]
    with pytest.raises(ValidationError, match="unknown permission 'fly'"):
        roles_with({"pilot": ["fly"]})
    roles_file.write_text("roles = 1\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"needs a \[roles\] table"):
        load_roles(roles_file)


# -- the client: a clerk of court A against court B's task ------------------------------------------------------

RefusedCall = Callable[[DeliveryClient, str], object]

CALLS_ON_A_TASK: dict[str, RefusedCall] = {
    "task": lambda c, t: c.task(t),
    "status": lambda c, t: c.status(t),
    "timeline": lambda c, t: c.timeline(t),
    "proof_bundle": lambda c, t: c.proof_bundle(t),
    "cancel": lambda c, t: c.cancel(t, "撤回"),
    "resume": lambda c, t: c.resume(t, "再试"),
    "set_contact": lambda c, t: c.set_contact(t, Contact(kind=ContactKind.EMAIL, value="x@example.cn")),
    "set_address": lambda c, t: c.set_address(t, Contact(kind=ContactKind.POSTAL, value="湖北省武汉市江夏区1号")),
    "record_objection": lambda c, t: c.record_objection(t),
    "record_acceptance": lambda c, t: c.record_acceptance(t, "D-none"),
}


@pytest.mark.parametrize("call", sorted(CALLS_ON_A_TASK))
def test_a_clerk_cannot_read_or_change_another_courts_task(
    two_courts: tuple[DeliveryClient, str, str], call: str
) -> None:
    client, _a, b = two_courts
    before = _dump(client)
    records = len(client.access_records())
    clerk = client.as_actor(CLERK_A)
    with pytest.raises(AccessDenied, match=f"court {HONGSHAN}") as caught:
        CALLS_ON_A_TASK[call](clerk, b)
    assert caught.value.court == HONGSHAN
    assert caught.value.staff_id == CLERK_A.staff_id
    assert _dump(client) == before
    assert len(client.access_records()) == records  # a refused read is no read


def test_a_clerk_reads_and_acts_on_its_own_courts_tasks(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, a, _b = two_courts
    clerk = client.as_actor(CLERK_A)
    assert clerk.task(a).request.party.name == NAME_A
    assert clerk.status(a).court == "法院鄂0106"
    clerk.cancel(a, "当事人已到庭领取")
    assert clerk.status(a).state.value == "cancelled"


def test_lists_and_counts_keep_to_the_actors_courts(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, _a, b = two_courts
    clerk = client.as_actor(CLERK_A)
    case_b = Case(court="法院鄂0111", case_number="(2026)鄂0111民初2号")
    assert clerk.tasks_of_case(case_b) == []
    assert [s.task_id for s in client.tasks_of_case(case_b)] == [b]
    assert clerk.count_by_state() == {"created": 1}
    assert client.count_by_state() == {"created": 2}
    assert client.as_actor(SUPERVISOR).count_by_state() == {"created": 2}


def test_a_clerk_cannot_submit_for_another_court(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, _, _ = two_courts
    before = _dump(client)
    with pytest.raises(AccessDenied, match=f"court {HONGSHAN}"):
        client.as_actor(CLERK_A).submit(_request(HONGSHAN, 3, NAME_B, PHONE_B, ADDRESS_B))
    assert _dump(client) == before


def test_a_clerk_cannot_ingest_for_another_courts_dispatch() -> None:
    from delivery_sdk.testing import Harness, Outcome

    async def scenario() -> None:
        h = Harness()
        client = h.client
        b = await client.submit(_request(HONGSHAN, 5, NAME_B, PHONE_B, ADDRESS_B))
        h.eservice.default = Outcome.delivered(timedelta(days=30))  # sent, no news yet
        await client.run_until_idle(until=h.clock.now() + timedelta(minutes=1))
        dispatch = client.engine.load_task(b).dispatches[0]
        receipt = Receipt(dispatch_id=dispatch.dispatch_id, kind=ReceiptKind.READ, at=h.clock.now())
        clerk = client.as_actor(CLERK_A)
        with pytest.raises(AccessDenied, match=f"court {HONGSHAN}"):
            await clerk.ingest(receipt, channel=dispatch.channel)
        with pytest.raises(AccessDenied, match="'operate' permission"):
            await clerk.run_until_idle()
        with pytest.raises(AccessDenied, match="'operate' permission"):
            await clerk.ingest_callback(dispatch.channel, {}, b"{}")
        assert client.engine.load_task(b).dispatches[0].status is dispatch.status
        # the clerk of the task's own court may record it (a staff call's outcome, say)
        await client.as_actor(CLERK_B).ingest(receipt, channel=dispatch.channel)
        assert client.engine.load_task(b).dispatches[0].status is not dispatch.status
        await h.aclose()

    asyncio.run(scenario())


def test_roles_without_the_permission_are_refused(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, a, _ = two_courts
    sup = client.as_actor(SUPERVISOR)
    for call in (lambda: sup.status(a), lambda: sup.task(a), lambda: sup.timeline(a), lambda: sup.cancel(a, "x")):
        with pytest.raises(AccessDenied, match="the role lacks"):
            call()
    operator = client.as_actor(OPERATOR)
    assert operator.status(a).task_id == a  # masked contacts: an operator's work
    with pytest.raises(AccessDenied, match="'personal' permission"):
        operator.task(a)
    with pytest.raises(AccessDenied, match="'audit' permission"):
        client.as_actor(CLERK_A).access_records()


def test_a_view_closes_nothing(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, a, _ = two_courts
    view = client.as_actor(CLERK_A)
    view.close()
    assert client.status(a).task_id == a
    assert client.actor is LOCAL_ACTOR
    assert view.actor == CLERK_A


# -- who looked -----------------------------------------------------------------------------------------------


def test_every_read_of_personal_data_is_recorded(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, a, b = two_courts
    clerk = client.as_actor(CLERK_A)
    clerk.task(a)
    clerk.timeline(a)
    clerk.proof_bundle(a)
    clerk.status(a)  # masked: not a read of personal data
    client.as_actor(CLERK_B).task(b)
    auditor = client.as_actor(AUDITOR)
    mine = auditor.access_records(staff_id=CLERK_A.staff_id)
    assert [(r.task_id, r.court, r.role, r.what) for r in mine] == [
        (a, WUCHANG, "clerk", "task"),
        (a, WUCHANG, "clerk", "timeline"),
        (a, WUCHANG, "clerk", "proof"),
    ]
    assert [r.staff_id for r in auditor.access_records(task_id=b)] == [CLERK_B.staff_id]
    # an auditor of one court sees that court's records only
    local_auditor = client.as_actor(Actor(staff_id="aud-2", role="auditor", courts=HONGSHAN))
    assert {r.court for r in local_auditor.access_records()} == {HONGSHAN}
    assert verify_store(client.store.path).ok  # type: ignore[attr-defined]


def _tamper(path: Path, sql: str) -> None:
    db = sqlite3.connect(path)
    db.execute(sql)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE access_log SET staff_id = 'someone-else' WHERE seq = 2", "access record 2 does not match"),
        ("UPDATE access_log SET task_id = 'T-other' WHERE seq = 3", "access record 3 does not match"),
        ("DELETE FROM access_log WHERE seq = 2", "access record 2 is missing"),
    ],
    ids=["edited-staff", "edited-task", "deleted"],
)
def test_verify_finds_an_edited_or_deleted_access_record(
    two_courts: tuple[DeliveryClient, str, str], sql: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client, a, _b = two_courts
    clerk = client.as_actor(CLERK_A)
    for _ in range(2):
        clerk.task(a)
        clerk.timeline(a)
    path = Path(client.store.path)  # type: ignore[attr-defined]
    assert verify_store(path).accesses == 4
    _tamper(path, sql)
    report = verify_store(path)
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems
    assert main(["verify", "--store", str(path)]) == 1
    assert problem in capsys.readouterr().out


def test_verify_finds_the_access_log_cut_short_against_a_head_kept(
    two_courts: tuple[DeliveryClient, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client, a, _ = two_courts
    clerk = client.as_actor(CLERK_A)
    clerk.task(a)
    clerk.timeline(a)
    path = str(client.store.path)  # type: ignore[attr-defined]
    assert main(["access", "--store", path, "--actor", CLERK_A.staff_id, "--json"]) == 0
    last = json.loads(capsys.readouterr().out)[-1]
    head = f"{last['seq']}:{last['chain']}"
    assert main(["verify", "--store", path, "--access-head", head]) == 0
    assert "2 access records" in capsys.readouterr().out
    _tamper(Path(path), "DELETE FROM access_log WHERE seq = 2")  # the newest: the chain left is whole
    assert verify_store(path).ok
    assert main(["verify", "--store", path, "--access-head", head]) == 1
    assert "the head kept, is missing: the log was cut short" in capsys.readouterr().out
    assert main(["verify", "--store", path, "--access-head", "2:xyz"]) == 2
    assert "SEQ:CHAIN" in capsys.readouterr().err


# -- the command line -----------------------------------------------------------------------------------------


@pytest.fixture
def store_path(two_courts: tuple[DeliveryClient, str, str]) -> tuple[str, str, str]:
    client, a, b = two_courts
    return str(client.store.path), a, b  # type: ignore[attr-defined]


CLI_ON_B: dict[str, Callable[[str, str], list[str]]] = {
    "status": lambda s, b: ["status", b, "--store", s],
    "tasks": lambda s, b: ["tasks", "--store", s, "--case", "(2026)鄂0111民初2号"],
    "proof": lambda s, b: ["proof", b, "--store", s],
    "stats": lambda s, b: ["stats", "--store", s, "--court", "法院鄂0111"],
    "report": lambda s, b: ["report", "--store", s, "--court", "法院鄂0111", "--out", "/dev/null"],
}


@pytest.mark.parametrize("command", sorted(CLI_ON_B))
def test_a_clerk_cannot_read_another_courts_task_on_the_command_line(
    store_path: tuple[str, str, str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _a, b = store_path
    argv = CLI_ON_B[command](store, b)
    assert main([*argv, "--actor", CLERK_A.describe()]) == 2
    err = capsys.readouterr().err
    assert "error: " in err
    assert NAME_B not in err
    assert main(argv) == 0  # the local default reads it (a single-court installation, unchanged)


def test_the_actor_comes_from_the_environment(
    store_path: tuple[str, str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, a, b = store_path
    monkeypatch.setenv("DELIVERY_SDK_ACTOR", CLERK_A.describe())
    assert main(["status", a, "--store", store]) == 0
    assert main(["status", b, "--store", store]) == 2
    assert "鄂0111" in capsys.readouterr().err
    monkeypatch.setenv("DELIVERY_SDK_ACTOR", "nobody")
    assert main(["status", a, "--store", store]) == 2
    assert "role:staff_id@courts" in capsys.readouterr().err


def test_access_command_answers_who_looked_and_what_they_looked_at(
    store_path: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store, a, _b = store_path
    assert main(["proof", a, "--store", store, "--actor", CLERK_A.describe(), "--out", "/dev/null"]) == 0
    capsys.readouterr()
    assert main(["access", "--store", store, "--task", a]) == 0
    out = capsys.readouterr().out
    assert "c0106-01" in out
    assert "书记员" in out
    assert "证据包" in out
    assert "北京时间" in out
    assert main(["access", "--store", store, "--actor", "c0106-01", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["task_id"], r["what"], r["court"]) for r in rows] == [(a, "proof", WUCHANG)]
    # only an auditor (or the local default) reads the access records
    assert main(["access", "--store", store, "--task", a, "--as", CLERK_A.describe()]) == 2
    assert "'audit' permission" in capsys.readouterr().err
    assert main(["access", "--store", store]) == 2


# -- a supervisor sees figures, never personal data -------------------------------------------------------------


def test_a_supervisor_sees_figures_but_no_personal_data(
    two_courts: tuple[DeliveryClient, str, str], tmp_path: Path
) -> None:
    client, a, b = two_courts
    client.as_actor(CLERK_A).task(a)  # an access record on the dashboard
    path = Path(client.store.path)  # type: ignore[attr-defined]
    html, data = tmp_path / "d.html", tmp_path / "d.json"
    stats = write_report(path, html, json_path=data, actor=SUPERVISOR, upgrade=False)
    assert stats.tasks == 2
    text = html.read_text(encoding="utf-8") + data.read_text(encoding="utf-8")
    for secret in (NAME_A, NAME_B, PHONE_A, PHONE_B, ADDRESS_A, ADDRESS_B, "中北路", "珞喻路"):
        assert secret not in text
    exported = json.loads(data.read_text(encoding="utf-8"))
    assert exported["access"]["per_court"] == [{"court": WUCHANG, "reads": 1, "tasks": 1, "staff": 1}]
    # a supervisor of one court sees that court alone
    one = Actor(staff_id="sup-2", role="supervisor", courts=WUCHANG)
    with Supervisor(path, upgrade=False, actor=one) as sup:
        assert sup.statistics().tasks == 1
        assert [r.task_id for r in sup.tasks()] == [a]
        assert sup.courts() == ["法院鄂0106"]
        assert sup.access_volume() == [{"court": WUCHANG, "reads": 1, "tasks": 1, "staff": 1}]
        with pytest.raises(AccessDenied):
            sup.timeline(b)
    with pytest.raises(AccessDenied, match="'statistics' permission"):
        Supervisor(path, upgrade=False, actor=AUDITOR)


def test_unusual_reads_are_flagged(tmp_path: Path) -> None:
    clock = VirtualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    with DeliveryClient(tmp_path / "s.sqlite3", clock=clock, load_entry_points=False) as client:
        ids = client.submit_many([_request(WUCHANG, n, NAME_A, PHONE_A, ADDRESS_A) for n in range(1, 41)])
        readers = [Actor(staff_id=f"c{i}", role="clerk", courts=WUCHANG) for i in range(4)]
        for i, reader in enumerate(readers[:3]):
            for task_id in ids[i * 3 : i * 3 + 3]:
                client.as_actor(reader).task(task_id)
        for task_id in ids:  # one clerk reads all forty
            client.as_actor(readers[3]).task(task_id)
        html = tmp_path / "d.html"
        write_report(client.store.path, html, upgrade=False)  # type: ignore[attr-defined]
    page = html.read_text(encoding="utf-8")
    assert 'data-staff="c3"' in page
    assert 'data-staff="c0"' not in page
    assert "同角色中位数 3" in page


# -- the property: nothing outside the actor's scope is returned or changed ---------------------------------------


def test_nothing_outside_an_actors_courts_is_returned_or_changed(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    courts = ["鄂0106", "鄂0111", "鄂0502", "鄂01"]
    clock = VirtualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    counter = iter(range(1, 10**6))

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        tasks=st.lists(st.sampled_from(courts), min_size=1, max_size=6),
        actor_courts=st.sets(st.sampled_from([*courts, "鄂", "*"]), min_size=1, max_size=2),
        role=st.sampled_from(["clerk", "operator", "supervisor", "auditor"]),
        action=st.sampled_from(["task", "status", "timeline", "cancel", "proof_bundle"]),
    )
    def check(tasks: list[str], actor_courts: set[str], role: str, action: str) -> None:
        path = tmp_path / f"p{next(counter)}.sqlite3"
        with DeliveryClient(path, clock=clock, load_entry_points=False) as client:
            ids = client.submit_many(
                [_request(code, n, NAME_A, PHONE_A, ADDRESS_A) for n, code in enumerate(tasks, start=1)]
            )
            client.store.checkpoint("o", [SIGNER], clock.now())  # type: ignore[attr-defined]
            actor = Actor(staff_id="who", role=role, courts=frozenset(actor_courts))
            view = client.as_actor(actor)
            court_of = {t: client.store.task_row(t).court for t in ids}
            for task_id in ids:
                before = _dump(client)
                try:
                    getattr(view, action)(task_id, *(("x",) if action == "cancel" else ()))
                except AccessDenied:
                    assert _dump(client) == before
                    assert not (actor.covers(court_of[task_id]) and _allowed(actor, action))
                else:
                    assert actor.covers(court_of[task_id])
                    assert _allowed(actor, action)
            if actor.can(Permission.READ):
                for code in set(tasks):
                    number = f"(2026){code}民初"
                    listed = [
                        s.task_id
                        for n, c in enumerate(tasks, start=1)
                        if c == code
                        for s in view.tasks_of_case(Case(court=f"法院{code}", case_number=f"{number}{n}号"))
                    ]
                    assert all(actor.covers(court_of[t]) for t in listed)
            if actor.can(Permission.STATISTICS):
                assert sum(view.count_by_state().values()) == sum(1 for t in ids if actor.covers(court_of[t]))
            # every access record is of a task the actor covers
            assert all(actor.covers(r.court) for r in client.access_records(staff_id="who"))

    check()


def _allowed(actor: Actor, action: str) -> bool:
    need = {
        "task": [Permission.PERSONAL],
        "timeline": [Permission.PERSONAL],
        "status": [Permission.READ],
        "cancel": [Permission.ACT],
        "proof_bundle": [Permission.AUDIT, Permission.PERSONAL],
    }[action]
    return any(actor.can(p) for p in need)


def test_unknown_tasks_stay_unknown(two_courts: tuple[DeliveryClient, str, str]) -> None:
    client, _, _ = two_courts
    with pytest.raises(UnknownTask):
        client.as_actor(CLERK_A).status("T-none")
