"""The engine with the e-mail channel as a killable process (``test_email.py``'s crash test).

::

    python crash_worker.py STORE SENT_LOG SMTP_PORT [--kill-after-send]

Submits the same three requests (idempotent on their client keys) to the SQLite store, runs the engine until
nothing is due and prints a JSON summary. With ``--kill-after-send`` the process ends itself
(``os._exit(17)``) right after the SMTP server accepted the first message and the sent log recorded it,
before the engine could commit the send result: the moment a resend would be a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime

from delivery_sdk_email import EmailChannel, SQLiteSentLog

from delivery_sdk import AsyncDeliveryClient, ChannelKind, Dispatch, EngineConfig, SendResult, SQLiteStore
from delivery_sdk.testing import FakeCarrier, Outcome, VirtualClock, channels_plugin, make_party, make_request

EPOCH = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


class KillAfterSend(EmailChannel):
    async def send(self, dispatch: Dispatch) -> SendResult:
        result = await super().send(dispatch)
        os._exit(17)  # the engine never learns the result
        return result


async def main(store_path: str, sent_path: str, port: int, kill: bool) -> dict[str, list[str]]:
    store = SQLiteStore(store_path)
    clock = VirtualClock(max(EPOCH, store.latest_event_time() or EPOCH))
    kind = KillAfterSend if kill else EmailChannel
    adapter = kind(
        "127.0.0.1",
        port,
        sender="service@court.example",
        sent_log=SQLiteSentLog(sent_path),
        security="none",
        mode="direct",
        link_template="https://court.example/s/{token}",
        link_secret="link-secret",
        timeout=5.0,
        clock=clock,
    )
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
            party = make_party(f"P{i}", mobile=None, email=f"party{i}@example.com")
            request = make_request(party, client_key=f"k-{i}", channels=[ChannelKind.EMAIL])
            ids.append(await client.submit(request))
        await client.run_until_idle()
        statuses = [client.status(task_id) for task_id in ids]
        return {
            "states": [s.state.value for s in statuses],
            "methods": [s.method.value if s.method else "" for s in statuses],
            "dispatch_ids": [d.dispatch_id for s in statuses for d in s.dispatches],
        }


if __name__ == "__main__":
    summary = asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), "--kill-after-send" in sys.argv))
    print(json.dumps(summary))
