"""Any contact on a task (issue 23): staff and assisted person search add or replace a task's contacts of any
kind, with provenance (``client.set_contact``, ``contact.updated``), and the policy uses them at once.

- a postal-only party whose carrier needs a phone: warned at submit, stopped before any waybill is ordered,
  and served by post once a clerk adds a phone (the EMS plugin's own test does the same against its emulator);
- a mobile a clerk adds opens electronic service where the party's consent allows it; the party did not give
  that number, so the e-service takes effect only on its read (SPC Online Litigation Rules Art. 31(2));
  without consent it opens none (CPL Art. 90);
- a replaced number is not used again; a phone found by assisted person search becomes a contact;
- the refusals: an unknown contact to replace, another kind, a served task, an address while in the post.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from delivery_sdk import (
    ChannelKind,
    Contact,
    ContactKind,
    IllegalTransition,
    ServiceMethod,
    TaskState,
    ValidationError,
)
from delivery_sdk.events import ContactUpdated, Event, Served
from delivery_sdk.law.service import BASIS_ELECTRONIC_READ
from delivery_sdk.records import AddressCandidate
from delivery_sdk.supervision.meaning import actor_of, describe
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
NEW_MOBILE = "13912345678"
PHONE = Contact(kind=ContactKind.MOBILE, value=NEW_MOBILE)


def run(scenario: Callable[[Harness], Awaitable[None]], *, requires_phone: bool = True, **kwargs: Any) -> None:
    async def main() -> None:
        harness = Harness(start=T0, **kwargs)
        if requires_phone:
            harness.carrier.requires = frozenset({"receiver_phone"})  # as the real EMS carrier
        try:
            await scenario(harness)
            assert harness.unused() == {}
        finally:
            await harness.aclose()

    asyncio.run(main())


def types_of(h: Harness, task_id: str) -> list[str]:
    return [s.event.TYPE for s in h.client.timeline(task_id)]


def events_of(h: Harness, task_id: str, cls: type[Event]) -> list[Any]:
    return [s.event for s in h.client.timeline(task_id) if isinstance(s.event, cls)]


def postal_only(party_id: str, *, consent: bool = False) -> Any:
    return make_party(party_id, mobile=None, consent=consent)


def test_a_postal_only_party_is_warned_about_at_submit_and_served_by_post_once_a_clerk_adds_a_phone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="delivery_sdk.client")

    async def scenario(h: Harness) -> None:
        request = make_request(postal_only("P-1"))
        (warning,) = h.client.check_request(request)
        assert (warning.code, warning.adapter) == ("receiver_phone_missing", "fake-ems")
        task_id = await h.client.submit(request)
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert "receiver_phone_missing" in caplog.records[0].getMessage()
        # a party with a phone is not warned about; nor is any party when the carrier needs nothing
        assert h.client.check_request(make_request(make_party("P-2"))) == ()

        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason is not None
        assert "client.set_contact" in status.attention_reason
        assert h.carrier.orders == {}  # no waybill was ordered, no print job queued
        assert all(c.jobs == [] for c in h.centres)

        h.carrier.enqueue(Outcome.signed(after=timedelta(days=2)))
        await h.client.set_contact(task_id, PHONE, actor="clerk-07", note="找到当事人电话")
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        (order,) = h.carrier.orders.values()
        assert order.recipient_phone == NEW_MOBILE
        assert ChannelKind.SMS not in {d.kind for d in status.dispatches}  # no consent: no e-service opened
        (update,) = events_of(h, task_id, ContactUpdated)
        assert (update.source, update.actor, update.note, update.replaces) == (
            "staff",
            "clerk-07",
            "找到当事人电话",
            None,
        )

    run(scenario, kinds={ChannelKind.SMS})  # no staff calls: without consent, straight to post


def test_without_consent_staff_phone_the_added_number_to_seek_consent_first() -> None:
    async def scenario(h: Harness) -> None:
        task_id = await h.client.submit(make_request(postal_only("P-1b")))
        await h.client.run_until_idle()
        h.phone.enqueue(Outcome.failed("no answer"))  # nobody picks up: no consent, so post
        h.carrier.enqueue(Outcome.signed())
        await h.client.set_contact(task_id, PHONE)
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.state, status.method) == (TaskState.FILED, ServiceMethod.POSTAL)
        assert [(d.kind, d.contact) for d in status.dispatches][-2:] == [
            (ChannelKind.PHONE, "13*******78"),  # Rules Art. 30: consent sought at the number found
            (ChannelKind.PRINT, status.dispatches[-1].contact),
        ]

    run(scenario)


def test_a_clerk_added_mobile_opens_e_service_under_consent_and_serves_only_on_the_read() -> None:
    """Consent to e-service is the party's (CPL Art. 90); the number is the court's finding, not one the
    party gave or confirmed, so its arrival is not service: the read is (Rules Art. 31(2))."""

    async def scenario(h: Harness) -> None:
        task_id = await h.client.submit(make_request(postal_only("P-3", consent=True)))
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.NEEDS_ATTENTION  # no e-contact, no phone for post

        h.sms.enqueue(Outcome.delivered(after=timedelta(minutes=1), read_after=timedelta(minutes=40)))
        await h.client.set_contact(task_id, PHONE)
        await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=10))
        status = h.client.status(task_id)
        assert status.state is TaskState.ELECTRONIC  # delivered, but not yet served: awaiting the read
        assert [(d.kind, d.contact) for d in status.dispatches] == [(ChannelKind.SMS, "13*******78")]

        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        (served,) = events_of(h, task_id, Served)
        assert served.basis == BASIS_ELECTRONIC_READ
        record = h.client.task(task_id).dispatch(served.dispatch_id)
        assert record is not None
        assert served.effective_at == record.read_at != record.delivered_at

    run(scenario, kinds={ChannelKind.SMS})


def test_a_number_the_party_confirmed_serves_on_arrival() -> None:
    async def scenario(h: Harness) -> None:
        task_id = await h.client.submit(make_request(postal_only("P-4", consent=True)))
        await h.client.run_until_idle()
        h.sms.enqueue(Outcome.delivered(after=timedelta(minutes=1)))
        confirmed = Contact(kind=ContactKind.MOBILE, value=NEW_MOBILE, confirmed=True)  # on the confirmation form
        await h.client.set_contact(task_id, confirmed, source="portal", actor="party")
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.state, status.method) == (TaskState.FILED, ServiceMethod.ELECTRONIC)
        assert status.served_at == status.dispatches[0].delivered_at

    run(scenario, kinds={ChannelKind.SMS})


def test_a_replaced_number_is_not_used_again_and_the_new_one_is_tried() -> None:
    async def scenario(h: Harness) -> None:
        party = make_party("P-5", consent=True)
        old = party.contacts[0]
        assert old.kind is ContactKind.MOBILE
        h.sms.enqueue(Outcome.no_answer())  # a wrong number: nothing ever comes back
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle(until=T0 + timedelta(minutes=30))
        assert h.client.status(task_id).state is TaskState.ELECTRONIC
        h.sms.enqueue(Outcome.read(after=timedelta(minutes=5)))
        await h.client.set_contact(task_id, PHONE, replaces=old)
        task = h.client.task(task_id)
        assert task.contacts_of(ContactKind.MOBILE) == (
            Contact(kind=ContactKind.MOBILE, value=NEW_MOBILE, source="staff"),
        )
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.method is ServiceMethod.ELECTRONIC
        assert [d.contact for d in status.dispatches if d.kind is ChannelKind.SMS] == ["13*******00", "13*******78"]

    run(scenario, kinds={ChannelKind.SMS}, requires_phone=False)


def test_a_phone_found_by_assisted_person_search_becomes_a_contact_with_its_source() -> None:
    async def scenario(h: Harness) -> None:
        h.addresses.candidates["P-6"] = [
            AddressCandidate(contact=PHONE, source="household_registry", confidence=0.7),
            AddressCandidate(contact=Contact(kind=ContactKind.MOBILE, value="13700000001"), source="operator"),
        ]
        h.carrier.enqueue(Outcome.signed())
        task_id = await h.client.submit(make_request(postal_only("P-6")))
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.FILED
        (update,) = events_of(h, task_id, ContactUpdated)  # the best-ranked source's phone only
        assert (update.contact.value, update.source, update.confidence) == (NEW_MOBILE, "household_registry", 0.7)
        assert actor_of(update) == "provider"
        (order,) = h.carrier.orders.values()
        assert order.recipient_phone == NEW_MOBILE

    run(scenario)


def test_set_contact_refusals() -> None:
    async def scenario(h: Harness) -> None:
        h.sms.enqueue(Outcome.delivered())
        served = await h.client.submit(make_request(make_party("P-7")))
        await h.client.run_until_idle()
        assert h.client.status(served).state is TaskState.FILED
        with pytest.raises(IllegalTransition):
            await h.client.set_contact(served, PHONE)
        with pytest.raises(ValidationError, match="no mobile contact"):
            await h.client.set_contact(served, PHONE, replaces=Contact(kind=ContactKind.MOBILE, value="13700000009"))
        with pytest.raises(ValidationError, match="replaces must be a mobile"):
            await h.client.set_contact(served, PHONE, replaces=Contact(kind=ContactKind.EMAIL, value="a@example.cn"))
        with pytest.raises(ValidationError, match="set_contact takes a Contact"):
            await h.client.set_contact(served, NEW_MOBILE)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="actor"):
            await h.client.set_contact(served, PHONE, actor="")
        with pytest.raises(ValidationError, match="U\\+0000"):
            await h.client.set_contact(served, PHONE, note="bad\x00")
        assert events_of(h, served, ContactUpdated) == []

        h.carrier.enqueue(Outcome.signed(after=timedelta(days=5)))
        posted = await h.client.submit(make_request(make_party("P-8", consent=False)))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(days=2))
        assert h.client.status(posted).state is TaskState.MAILED
        with pytest.raises(IllegalTransition, match=r"contact\.updated\(postal\)"):
            await h.client.set_contact(posted, Contact(kind=ContactKind.POSTAL, value="湖北省武汉市江岸区沿江大道2号"))
        await h.client.set_contact(posted, PHONE)  # a phone is recorded in the post: the next waybill has it
        assert h.client.status(posted).state is TaskState.MAILED
        await h.client.run_until_idle()

    run(scenario, kinds={ChannelKind.SMS}, requires_phone=False)


def test_the_timeline_meaning_masks_the_contacts() -> None:
    event = ContactUpdated(
        task_id="T",
        at=T0,
        contact=PHONE,
        source="staff",
        replaces=Contact(kind=ContactKind.MOBILE, value="13800138000"),
        actor="clerk-07",
        note="13912345678",
    )
    for lang in ("zh_CN", "en"):
        text = describe(event, lang)
        assert NEW_MOBILE not in text
        assert "13800138000" not in text
        assert "13*******78" in text
    assert actor_of(event) == "staff"
