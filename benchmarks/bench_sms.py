"""Dispatches per second through the SMS adapter against its local gateway, concurrency on versus off.

The gateway (:mod:`delivery_sdk_sms.emulator`) runs in its own process on 127.0.0.1, so it does not share
the client's GIL; every send is a real, signed HTTP request that the gateway authenticates and records.
"Off" sends one dispatch at a time; "on" keeps N sends in flight for each N of ``--concurrency``
(asyncio.gather with a semaphore; the adapter's connection pool is as large); ``ratio_on_to_off`` maps N
to on/off. Each mode runs at two gateway latencies: 0 (the raw cost of the adapter and the local server)
and ``--latency`` seconds added to every answer (a real gateway's round trip, where concurrency pays).
Results go to benchmarks/results/sms.json.

    python benchmarks/bench_sms.py [--dispatches 400] [--concurrency 8,64] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from delivery_sdk_sms import SmsChannel

from delivery_sdk import ChannelKind, Dispatch
from delivery_sdk.model import Contact, ContactKind
from delivery_sdk.testing import make_request

RESULTS = Path(__file__).parent / "results"
REQUEST = make_request()


def dispatch(i: int, run: str) -> Dispatch:
    return Dispatch(
        dispatch_id=f"{run}.{i}",
        task_id=run,
        channel="sms",
        kind=ChannelKind.SMS,
        contact=Contact(kind=ContactKind.MOBILE, value="13800138000"),
        case=REQUEST.case,
        recipient_name=REQUEST.party.name,
        documents=REQUEST.documents,
    )


def channel(url: str, connections: int) -> SmsChannel:
    return SmsChannel(
        url,
        access_key_id="emulator-key-id",
        access_key_secret="emulator-key-secret",
        callback_secret="emulator-callback-secret",
        sign_name="武汉中院",
        template_code="SMS_0001",
        link_template="https://ssfw.court.example/s/{token}",
        max_connections=connections,
        timeout=30.0,
    )


async def measure(url: str, count: int, concurrency: int, run: str) -> dict[str, float]:
    async with channel(url, max(1, concurrency)) as sms:
        await sms.send(dispatch(0, f"{run}-warmup"))  # token-free, but opens a connection
        gate = asyncio.Semaphore(concurrency)
        accepted = 0

        async def one(i: int) -> None:
            nonlocal accepted
            async with gate:
                result = await sms.send(dispatch(i, run))
                accepted += result.accepted

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(count)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert accepted == count, f"{count - accepted} sends were not accepted"
    return {
        "dispatches": count,
        "seconds": round(wall, 3),
        "per_second": round(count / wall, 1),
        "client_cpu_s": round(cpu, 3),
    }


def serve(latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "delivery_sdk_sms.emulator", "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispatches", type=int, default=400)
    parser.add_argument("--concurrency", default="8,64", help="in-flight levels for 'on', comma-separated")
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    runs = []
    for latency in (0.0, args.latency):
        process, url = serve(latency)
        try:
            off = asyncio.run(measure(url, args.dispatches, 1, f"off-{latency}"))
            on = [asyncio.run(measure(url, args.dispatches, n, f"on{n}-{latency}")) for n in levels]
        finally:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=10)
        runs.append(
            {
                "gateway_latency_s": latency,
                "concurrency_off": off,
                "concurrency_on": [{**r, "in_flight": n} for n, r in zip(levels, on, strict=True)],
                "ratio_on_to_off": {
                    str(n): round(r["per_second"] / off["per_second"], 2) for n, r in zip(levels, on, strict=True)
                },
            }
        )
    result = {
        "benchmark": "sms adapter dispatches per second against the local gateway (separate process)",
        "runs": runs,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sms.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
