"""The engine with the e-service channel as a killable process (``test_eservice.py``'s crash test).

::

    python crash_worker.py STORE PLATFORM_URL [--kill-after-send]

Submits the same three requests (idempotent on their client keys), runs the engine until nothing is due
and prints a JSON summary. With ``--kill-after-send`` the process ends itself (``os._exit(17)``) right after
the platform accepted the first push, before the engine could commit the result.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime

from delivery_sdk_eservice import EServiceChannel

from delivery_sdk import AsyncDeliveryClient, ChannelKind, Dispatch, EngineConfig, SendResult, SQLiteStore
from delivery_sdk.testing import FakeCarrier, Outcome, VirtualClock, channels_plugin, make_party, make_request

EPOCH = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


class KillAfterSend(EServiceChannel):
    async def send(self, dispatch: Dispatch) -> SendResult:
        result = await super().send(dispatch)
        os._exit(17)  # the engine never learns the result
        return result


async def main(store_path: str, url: str, kill: bool) -> dict[str, list[str]]:
    store = SQLiteStore(store_path)
    clock = VirtualClock(max(EPOCH, store.latest_event_time() or EPOCH))
    kind = KillAfterSend if kill else EServiceChannel
    adapter = kind(url, app_key="court-app", app_secret="platform-secret", timeout=5.0)
    client = AsyncDeliveryClient(
        store,
        plugins=[channels_plugin(adapter, FakeCarrier(clock=clock, default=Outcome.signed()))],
        clock=clock,
        config=EngineConfig(channel_concurrency=1),
        load_entry_points=False,
    )
    async with client:
        ids = []
        for i in range(3):
            party = make_party(f"P{i}", mobile=None, eservice=f"ES-{i}")
            request = make_request(party, client_key=f"k-{i}", channels=[ChannelKind.ESERVICE])
            ids.append(await client.submit(request))
        await client.run_until_idle()
        statuses = [client.status(task_id) for task_id in ids]
        return {
            "states": [s.state.value for s in statuses],
            "methods": [s.method.value if s.method else "" for s in statuses],
            "dispatch_ids": [d.dispatch_id for s in statuses for d in s.dispatches],
        }


if __name__ == "__main__":
    summary = asyncio.run(main(sys.argv[1], sys.argv[2], "--kill-after-send" in sys.argv))
    print(json.dumps(summary))
