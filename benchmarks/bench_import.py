"""``import delivery_sdk`` beside a bare interpreter start, best of N fresh processes.

    python benchmarks/bench_import.py [--runs 15]

The public names resolve lazily (``delivery_sdk.__getattr__``), so a script pays for the engine only when
it uses it; the second figure is the cost of ``from delivery_sdk import DeliveryClient``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def best(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    bare = best("pass", args.runs)
    package = best("import delivery_sdk", args.runs)
    client = best("from delivery_sdk import DeliveryClient", args.runs)
    result = {
        "benchmark": "import_time_ms",
        "bare_interpreter_ms": bare,
        "import_delivery_sdk_ms": package,
        "import_delivery_sdk_added_ms": package - bare,
        "import_client_ms": client,
        "import_client_added_ms": client - bare,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"python -c pass                       {bare:6.1f} ms")
    print(f"python -c 'import delivery_sdk'      {package:6.1f} ms  (+{package - bare:.1f} ms)")
    print(f"from delivery_sdk import DeliveryClient {client:6.1f} ms  (+{client - bare:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
