"""The engine's use of addresses: resolving a missing division code before routing, and merging the
candidates of assisted person search in the SPC 2017 Opinion order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from delivery_sdk import Contact, ContactKind, TaskState
from delivery_sdk.events import AddressUpdated, PrintRouted
from delivery_sdk.records import AddressCandidate
from delivery_sdk.testing import Harness, Outcome, make_party, make_request


def _postal(value: str, code: str | None = None, *, confirmed: bool = False) -> Contact:
    return Contact(kind=ContactKind.POSTAL, value=value, division_code=code, confirmed=confirmed)


def _events(h: Harness, task_id: str, cls: type) -> list:
    return [e.event for e in h.client.timeline(task_id) if isinstance(e.event, cls)]


def test_an_address_without_division_code_is_resolved_then_routed() -> None:
    async def main() -> None:
        h = Harness()
        h.carrier.enqueue(Outcome.signed())
        party = make_party(
            "P1", mobile=None, consent=False, address="湖北省宜昌市夷陵区小溪塔街道发展大道57号", division_code=None
        )
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()
        [routed] = _events(h, task_id, PrintRouted)
        assert routed.centre_id == "PC-420500"
        assert "division 420506 resolved by the resolver" in routed.reason
        assert h.client.status(task_id).state is TaskState.FILED
        await h.aclose()

    asyncio.run(main())


def test_an_ambiguous_address_goes_to_a_person_with_the_candidates() -> None:
    async def main() -> None:
        h = Harness()
        party = make_party("P2", mobile=None, consent=False, address="鼓楼区中山路1号", division_code=None)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        reason = status.attention_reason or ""
        assert reason.startswith("address is ambiguous: choose its division (candidates: ")
        assert "320106 江苏省南京市鼓楼区" in reason
        assert all(c.jobs == [] for c in h.centres)  # nothing was guessed
        await h.aclose()

    asyncio.run(main())


def test_search_prefers_sources_in_the_spc_2017_order_over_confidence() -> None:
    async def main() -> None:
        h = Harness()
        h.carrier.enqueue(Outcome.returned("address_wrong"), Outcome.signed())
        h.addresses.candidates["P3"] = [
            AddressCandidate(
                contact=_postal("湖北省孝感市孝南区城站路8号", "420902"), source="operator", confidence=0.99
            ),
            AddressCandidate(
                contact=_postal("湖北省荆州市荆州区荆中路1号", "421003"), source="contract", confidence=0.5
            ),
        ]
        party = make_party("P3", mobile=None, consent=False)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()
        [updated] = _events(h, task_id, AddressUpdated)
        assert updated.source == "contract"  # an address agreed in a contract ranks before operator data
        assert updated.contact.division_code == "421003"
        assert [r.centre_id for r in _events(h, task_id, PrintRouted)] == ["PC-420100", "PC-421000"]
        assert h.client.status(task_id).state is TaskState.FILED
        await h.aclose()

    asyncio.run(main())


def test_search_prefers_the_most_recent_of_equally_ranked_sources() -> None:
    async def main() -> None:
        h = Harness()
        h.carrier.enqueue(Outcome.returned("moved"), Outcome.signed())
        old, new = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)
        h.addresses.candidates["P4"] = [
            AddressCandidate(
                contact=_postal("湖北省黄石市下陆区团城山路1号", "420204"),
                source="litigation",
                confidence=0.7,
                observed_at=old,
            ),
            AddressCandidate(
                contact=_postal("湖北省咸宁市咸安区温泉路2号", "421202"),
                source="litigation",
                confidence=0.7,
                observed_at=new,
            ),
        ]
        task_id = await h.client.submit(make_request(make_party("P4", mobile=None, consent=False)))
        await h.client.run_until_idle()
        [updated] = _events(h, task_id, AddressUpdated)
        assert updated.contact.division_code == "421202"
        await h.aclose()

    asyncio.run(main())


def test_equally_good_different_addresses_go_to_a_person_without_revealing_them() -> None:
    async def main() -> None:
        h = Harness()
        h.carrier.enqueue(Outcome.returned("address_wrong"))
        h.addresses.candidates["P5"] = [
            AddressCandidate(
                contact=_postal("湖北省黄石市下陆区团城山路1号", "420204"), source="household_registry", confidence=0.8
            ),
            AddressCandidate(
                contact=_postal("湖北省咸宁市咸安区温泉路2号", "421202"), source="business_registry", confidence=0.8
            ),
        ]
        task_id = await h.client.submit(make_request(make_party("P5", mobile=None, consent=False)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        reason = status.attention_reason or ""
        assert "2 equally ranked addresses (business_registry, household_registry)" in reason
        assert "团城山路" not in reason
        assert "温泉路" not in reason
        # a person chooses; the task goes on by post to the chosen address
        h.carrier.enqueue(Outcome.signed())
        await h.client.set_address(task_id, _postal("湖北省咸宁市咸安区温泉路2号", "421202"))
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.FILED
        assert h.client.status(task_id).centre_id == "PC-421200"
        await h.aclose()

    asyncio.run(main())
