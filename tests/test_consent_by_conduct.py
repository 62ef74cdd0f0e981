"""Consent by conduct and the timing of consent, through the public client (virtual clock, fakes).

SPC Online Litigation Rules Art. 29: consent to e-service is established by (1) express consent, (2) a pre-suit
agreement, (3) an e-address given in a pleading — all before the service, covering what is sent after — or
(4) by accepting a completed e-service (replying that it was received, taking part) without objecting, which
exists only after that service. CPL Art. 90: no e-service without consent. The policy decides through
``law.consent_status`` / ``law.consent_covers`` (one rule, one place); an e-service sent without prior consent
(``PolicyConfig.serve_subject_to_acceptance``) takes effect only when the acceptance is recorded
(``client.record_acceptance``), at the acceptance (Rules Art. 31(2)(1)) or, with
``LawConfig.accepted_service_from_arrival``, from its arrival; the record names Art. 29(4).

The tests marked "fails on the code before issue 16" use only the API that existed then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from delivery_sdk import ChannelKind, DispatchStatus, PolicyConfig, ServiceMethod, TaskState, ValidationError
from delivery_sdk.events import ConsentObjected, ConsentRecorded, FellBackToPost, Served
from delivery_sdk.law import (
    BASIS_ACCEPTED_SERVICE,
    BASIS_ACCEPTED_SERVICE_ARRIVAL,
    BASIS_ELECTRONIC_REPLY,
    CONSENT_BASIS,
    LawConfig,
)
from delivery_sdk.law.evidence import Evidence
from delivery_sdk.model import Consent, ConsentMethod, Document, DocumentKind, Party
from delivery_sdk.proof import build_record
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # the Harness's virtual clock starts here
OPENID = "wx_openid_found_by_the_court"
SUBJECT_TO_ACCEPTANCE = PolicyConfig(serve_subject_to_acceptance=True)
ACCEPTED = CONSENT_BASIS[ConsentMethod.ACCEPTED_WITHOUT_OBJECTION]


def run(scenario: Callable[[Harness], Awaitable[None]], **harness_kwargs: Any) -> None:
    async def main() -> None:
        harness = Harness(start=T0, **harness_kwargs)
        harness.carrier.default = Outcome.signed()
        try:
            await scenario(harness)
            assert harness.unused() == {}
        finally:
            await harness.aclose()

    asyncio.run(main())


def events_of(h: Harness, task_id: str, cls: type[object]) -> list[Any]:
    return [s.event for s in h.client.timeline(task_id) if isinstance(s.event, cls)]


def wechat_only(consent: Consent | None = None) -> Party:
    """A party the court can reach only on a WeChat openid it found (no mobile: no staff call)."""
    party = make_party(mobile=None, wechat=OPENID, consent=False)
    if consent is None:
        return party
    return Party(party_id=party.party_id, name=party.name, contacts=party.contacts, consent=consent)


# -- Art. 29(4): an e-service sent without prior consent takes effect on the acceptance ----------------------


def test_accepted_e_service_takes_effect_at_the_acceptance_and_the_record_names_art_29_4() -> None:
    async def scenario(h: Harness) -> None:
        # delivered after 3 minutes and read after an hour: neither is service without consent
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3), read_after=timedelta(hours=1)))
        task_id = await h.client.submit(make_request(wechat_only()))
        await h.client.run_until_idle(until=T0 + timedelta(hours=20))
        status = h.client.status(task_id)
        assert status.state is TaskState.ELECTRONIC  # sent, arrived, read: waiting for the acceptance
        assert status.served_at is None
        assert status.consent_basis is None
        [d] = h.client.task(task_id).dispatches
        assert (d.kind, d.status) == (ChannelKind.WECHAT, DispatchStatus.READ)

        accepted_at = T0 + timedelta(hours=20)  # the party replied "收悉" on WeChat
        h.clock.advance_to(accepted_at + timedelta(minutes=5))
        await h.client.record_acceptance(task_id, d.dispatch_id, at=accepted_at)
        await h.client.run_until_idle()

        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert status.basis == BASIS_ACCEPTED_SERVICE  # Rules Arts. 29(4) and 31(2)(1)
        assert "Art" in status.basis
        assert "29(4)" in status.basis
        assert status.served_at == accepted_at  # not the arrival, not the read
        assert status.consent_basis == ACCEPTED  # the ground the consent rests on
        [consent] = events_of(h, task_id, ConsentRecorded)
        assert (consent.method, consent.given_at, consent.via_dispatch) == (
            ConsentMethod.ACCEPTED_WITHOUT_OBJECTION,
            accepted_at,
            d.dispatch_id,
        )
        [served] = events_of(h, task_id, Served)
        assert (served.basis, served.effective_at, served.dispatch_id) == (
            BASIS_ACCEPTED_SERVICE,
            accepted_at,
            d.dispatch_id,
        )
        record = h.sink.filed[f"{task_id}:proof"]
        assert (record.basis, record.effective_at) == (BASIS_ACCEPTED_SERVICE, accepted_at)
        proof = build_record(record)  # the e-service voucher names the ground, and holds the reply
        assert proof.basis == BASIS_ACCEPTED_SERVICE
        assert proof.evidence_complete
        assert any(Evidence.REPLY_RECORD in check.present for check in proof.evidence)
        assert h.client.task(task_id).dispatch(d.dispatch_id).accepted_at == accepted_at  # type: ignore[union-attr]

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)


def test_the_acceptance_can_date_the_service_from_its_arrival() -> None:
    """LawConfig.accepted_service_from_arrival: the acceptance ratifies the completed service (Rules Arts.
    29(4), 31(1))."""

    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(wechat_only()))
        await h.client.run_until_idle(until=T0 + timedelta(hours=2))
        [d] = h.client.task(task_id).dispatches
        await h.client.record_acceptance(task_id, d.dispatch_id)  # now
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.method, status.basis) == (ServiceMethod.ELECTRONIC, BASIS_ACCEPTED_SERVICE_ARRIVAL)
        assert status.served_at == T0 + timedelta(minutes=3)

    run(
        scenario,
        policy=PolicyConfig(serve_subject_to_acceptance=True, law=LawConfig(accepted_service_from_arrival=True)),
    )


def test_no_acceptance_within_the_window_serves_nothing_and_goes_by_post() -> None:
    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3), read_after=timedelta(minutes=10)))
        task_id = await h.client.submit(make_request(wechat_only()))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        [fallback] = events_of(h, task_id, FellBackToPost)
        assert fallback.at == T0 + SUBJECT_TO_ACCEPTANCE.acceptance_window  # counted from sending
        assert "Art. 29(4)" in fallback.reason
        assert events_of(h, task_id, ConsentRecorded) == []

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)


def test_an_objection_defeats_a_later_acceptance_and_the_task_goes_by_post() -> None:
    """Art. 29(4) requires acceptance *without objecting*: a party that refused e-service is not deemed to
    consent by replying afterwards; the policy stops waiting and goes by post."""

    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(wechat_only()))
        await h.client.run_until_idle(until=T0 + timedelta(hours=1))
        [d] = h.client.task(task_id).dispatches
        await h.client.record_objection(task_id, dispatch_id=d.dispatch_id)
        await h.client.record_acceptance(task_id, d.dispatch_id)  # recorded, as evidence; serves nothing
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        [fallback] = events_of(h, task_id, FellBackToPost)
        assert fallback.at < T0 + timedelta(hours=2)  # no waiting out the acceptance window
        assert "objected" in fallback.reason
        assert "Art. 29(4)" in fallback.reason
        [objection] = events_of(h, task_id, ConsentObjected)
        assert objection.via_dispatch == d.dispatch_id

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)


def test_an_acceptance_after_the_service_took_effect_changes_nothing() -> None:
    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(wechat_only()))
        await h.client.run_until_idle(until=T0 + timedelta(hours=1))
        [d] = h.client.task(task_id).dispatches
        first = h.clock.now()
        await h.client.record_acceptance(task_id, d.dispatch_id, at=first)
        await h.client.run_until_idle()
        h.clock.advance(timedelta(hours=1))
        await h.client.record_acceptance(task_id, d.dispatch_id)  # the party replies again
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.state, status.served_at, status.basis) == (TaskState.FILED, first, BASIS_ACCEPTED_SERVICE)
        assert len(events_of(h, task_id, Served)) == 1

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)


def test_without_the_option_no_e_service_is_sent_without_consent() -> None:
    async def scenario(h: Harness) -> None:
        task_id = await h.client.submit(make_request(wechat_only()))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.state, status.method) == (TaskState.FILED, ServiceMethod.POSTAL)
        assert status.fallback_reason == "no consent to electronic service"
        assert h.wechat.history == []

    run(scenario)


def test_a_staff_call_that_gets_no_consent_is_followed_by_service_subject_to_acceptance() -> None:
    async def scenario(h: Harness) -> None:
        h.phone.enqueue(Outcome.no_answer())
        h.sms.enqueue(Outcome.delivered(after=timedelta(minutes=1)))
        task_id = await h.client.submit(make_request(make_party(consent=False), channels=[ChannelKind.SMS]))
        await h.client.run_until_idle(until=T0 + timedelta(hours=50))
        task = h.client.task(task_id)
        assert [(d.kind, d.status) for d in task.dispatches] == [
            (ChannelKind.PHONE, DispatchStatus.TIMED_OUT),
            (ChannelKind.SMS, DispatchStatus.DELIVERED),
        ]
        assert task.state is TaskState.ELECTRONIC
        await h.client.record_acceptance(task_id, task.dispatches[1].dispatch_id)
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.method, status.basis) == (ServiceMethod.ELECTRONIC, BASIS_ACCEPTED_SERVICE)

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)


def test_record_acceptance_and_objection_check_their_input() -> None:
    async def scenario(h: Harness) -> None:
        h.phone.enqueue(Outcome.no_answer())
        task_id = await h.client.submit(make_request(make_party(consent=False)))
        await h.client.run_until_idle(max_steps=1)
        [call] = h.client.task(task_id).dispatches
        with pytest.raises(ValidationError, match="electronic dispatch"):
            await h.client.record_acceptance(task_id, call.dispatch_id)  # a staff call carries no document
        with pytest.raises(ValidationError, match="electronic dispatch"):
            await h.client.record_acceptance(task_id, "nope")
        with pytest.raises(ValidationError, match="no dispatch"):
            await h.client.record_objection(task_id, dispatch_id="nope")
        with pytest.raises(ValidationError, match="future"):
            await h.client.record_objection(task_id, at=T0 + timedelta(days=1))
        with pytest.raises(ValidationError, match="timezone"):
            await h.client.record_objection(task_id, at=datetime(2026, 11, 2, 1, 0))
        await h.client.cancel(task_id, "test over")

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)


# -- the policy decides through law.consent_status (fails on the code before issue 16) -----------------------


def test_consent_given_after_the_sending_does_not_cover_it() -> None:
    """Rules Arts. 29-30, LawConfig.consent_must_precede: a consent dated after the service moment does not
    cover it. Before issue 16 the engine asked only whether some consent existed, and served at once."""

    async def scenario(h: Harness) -> None:
        later = Consent(method=ConsentMethod.EXPRESS, given_at=T0 + timedelta(days=1))
        task_id = await h.client.submit(make_request(wechat_only(later)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.state, status.method) == (TaskState.FILED, ServiceMethod.POSTAL)
        assert status.fallback_reason is not None
        assert "consent given after the service moment" in status.fallback_reason
        assert "Art. 29(1)" in status.fallback_reason
        assert h.wechat.history == []

    run(scenario)


def test_an_acceptance_event_is_the_reply_that_makes_service_effective() -> None:
    """Rules Art. 31(2)(1): at an address the party did not confirm, its reply is the service moment. Before
    issue 16 an acceptance (consent.recorded, accepted_without_objection, via the dispatch) changed nothing:
    the dispatch, delivered but never read, served nothing and the task went by post."""

    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(wechat_only()))
        await h.client.run_until_idle(until=T0 + timedelta(hours=1))
        [d] = h.client.task(task_id).dispatches
        replied_at = T0 + timedelta(minutes=40)
        h.client.engine.record(
            task_id,
            ConsentRecorded(
                task_id=task_id,
                at=h.clock.now(),
                method=ConsentMethod.ACCEPTED_WITHOUT_OBJECTION,
                given_at=replied_at,
                via_dispatch=d.dispatch_id,
            ),
        )
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.method, status.basis, status.served_at) == (
            ServiceMethod.ELECTRONIC,
            BASIS_ELECTRONIC_REPLY,
            replied_at,
        )

    run(scenario, policy=PolicyConfig(require_consent=False))


def test_judgments_go_by_post_under_the_2017_text() -> None:
    """CPL 2017 Art. 87 (LawConfig.judgments_electronic=False): consent or not, a judgment is not served
    electronically; the policy's law config reaches consent_status."""

    async def scenario(h: Harness) -> None:
        party = make_party(mobile=None, wechat=OPENID)  # with consent (the confirmation form)
        judgment = Document(document_id="J1", title="判决书", kind=DocumentKind.JUDGMENT, sha256="a" * 64)
        request = make_request(party)
        request = type(request)(case=request.case, party=party, documents=(*request.documents, judgment))
        task_id = await h.client.submit(request)
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.state, status.method) == (TaskState.FILED, ServiceMethod.POSTAL)
        assert status.fallback_reason is not None
        assert "CPL 2017 Art. 87" in status.fallback_reason
        assert h.wechat.history == []

    run(scenario, policy=PolicyConfig(law=LawConfig(judgments_electronic=False)))


def test_an_objection_before_sending_bars_e_service_despite_consent() -> None:
    async def scenario(h: Harness) -> None:
        task_id = await h.client.submit(make_request(make_party(mobile=None, wechat=OPENID)))
        await h.client.record_objection(task_id)
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.state, status.method) == (TaskState.FILED, ServiceMethod.POSTAL)
        assert status.fallback_reason is not None
        assert "objected" in status.fallback_reason
        assert h.wechat.history == []

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)


def test_prior_consent_still_serves_on_arrival_and_the_status_names_its_ground() -> None:
    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(make_party(mobile=None, wechat=OPENID)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.served_at == T0 + timedelta(minutes=3)
        assert status.consent_basis == CONSENT_BASIS[ConsentMethod.CONFIRMATION_FORM]

    run(scenario, policy=SUBJECT_TO_ACCEPTANCE)
