"""The address resolver beside ``cpca`` on the same addresses: accuracy and speed, plus import time and memory.

    python benchmarks/bench_resolver.py [--count 200000] [--cpca-python /tmp/addrdata/bin/python]

``cpca`` (pandas, jieba-free Aho-Corasick) is not a dependency of delivery-sdk. It is run in-process if it is
importable, otherwise through ``--cpca-python`` (an interpreter of a scratch venv with ``pip install cpca``),
otherwise skipped and the JSON says why. Results go to ``benchmarks/results/resolver.json``.

Accuracy is scored on the shared 28-address sample and on the project's own 300-address set
(``tests/fixtures/addresses-hard.tsv``, issue 24): ``exact`` = the expected code (or no code where none is
right), ``wrong_route`` = a route key that is neither the expected one nor withheld. For delivery-sdk only
routable answers count (``Resolution.ok``: a code at or above ``ROUTING_THRESHOLD``); the rest are withheld,
as the engine sends them to a person. Speed is measured single-threaded on both sets; the target is 50,000
addresses/s on the sample.
"""

from __future__ import annotations

import argparse
import csv
import gc
import importlib.util
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SAMPLE = HERE.parent / "tests" / "fixtures" / "addresses-sample.tsv"
HARD = HERE.parent / "tests" / "fixtures" / "addresses-hard.tsv"

_CPCA_WORKER = r"""
import json, sys, time
import cpca
addresses = json.loads(sys.stdin.read())
count = int(sys.argv[1])
df = cpca.transform(addresses)
codes = [str(c) if c is not None and str(c) != "nan" else None for c in df["adcode"]]
batch = (addresses * (count // len(addresses) + 1))[:count]
started = time.perf_counter()
cpca.transform(batch)
elapsed = time.perf_counter() - started
print(json.dumps({"codes": codes, "seconds": elapsed, "count": count, "version": cpca.__version__
                  if hasattr(cpca, "__version__") else "unknown"}))
"""


def _sample() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _hard() -> list[dict[str, str]]:
    lines = [line for line in HARD.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    for row in rows:
        code = row["expected_code"]
        row["expected_route"] = "UNRESOLVED" if code == "AMBIG" else _route(code)
    return rows


def _route(code: str) -> str:
    return code if code.startswith("4290") else code[:4] + "00"


def score(rows: list[dict[str, str]], codes: list[str | None]) -> dict[str, int]:
    exact = wrong_route = withheld = 0
    for row, code in zip(rows, codes, strict=True):
        expected = row["expected_code"]
        if code is None or code == "" or code.endswith("0000"):
            withheld += 1
            exact += expected in {"AMBIG", "NONE"}
            continue
        if code == expected:
            exact += 1
        route = row["expected_route"]
        ok = code[:2] == route[4:6] if route.startswith("OUT:") else _route(code) == route
        wrong_route += not ok
    return {"addresses": len(rows), "exact": exact, "wrong_route": wrong_route, "withheld": withheld}


def import_ms(runs: int) -> float:
    def best(code: str) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - started)
        return min(times) * 1000

    return best("import delivery_sdk.address.resolver") - best("pass")


def first_resolve_ms(runs: int) -> float:
    code = (
        "import time; t=time.perf_counter(); from delivery_sdk.address.resolver import resolve; "
        "resolve('武昌区'); print((time.perf_counter()-t)*1000)"
    )
    return min(
        float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
        for _ in range(runs)
    )


def peak_memory_mb() -> float:
    code = (
        "import tracemalloc; tracemalloc.start(); from delivery_sdk.address.resolver import resolve; "
        "resolve('武昌区'); print(tracemalloc.get_traced_memory()[1] / 1e6)"
    )
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def run_cpca(addresses: list[str], count: int, python: str | None) -> dict[str, object]:
    if importlib.util.find_spec("cpca") is not None:
        interpreter = sys.executable
    elif python is not None:
        interpreter = python
    else:
        return {"skipped": "cpca is not importable here and no --cpca-python was given"}
    proc = subprocess.run(
        [interpreter, "-c", _CPCA_WORKER, str(count)],
        input=json.dumps(addresses, ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if proc.returncode != 0:
        return {"skipped": f"cpca failed: {proc.stderr.strip().splitlines()[-1:]}"}
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200_000, help="addresses to resolve for the speed figure")
    parser.add_argument("--runs", type=int, default=7, help="fresh processes for the import figures")
    parser.add_argument("--cpca-python", default=os.environ.get("CPCA_PYTHON"), help="interpreter with cpca")
    args = parser.parse_args(argv)

    from delivery_sdk.address.resolver import resolve

    def ours(address: str) -> str | None:
        r = resolve(address)
        return r.code if r.ok else None

    def speed(addresses: list[str]) -> float:
        count: int = args.count
        batch = (addresses * (count // len(addresses) + 1))[:count]
        gc.collect()
        started = time.perf_counter()
        for a in batch:
            resolve(a)
        return count / (time.perf_counter() - started)

    rows, hard = _sample(), _hard()
    addresses = [row["address"] for row in rows]
    hard_addresses = [row["address"] for row in hard]
    our_codes = [ours(a) for a in addresses]
    our_hard = [ours(a) for a in hard_addresses]
    per_s = speed(addresses)
    per_s_hard = speed(hard_addresses)

    tracemalloc.start()
    for a in addresses:
        resolve(a)
    steady_peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()

    cpca = run_cpca(addresses, args.count, args.cpca_python)
    cpca_result: dict[str, object] = {k: v for k, v in cpca.items() if k != "codes"}
    if "codes" in cpca:
        codes = cpca["codes"]
        assert isinstance(codes, list)
        cpca_result["accuracy"] = score(rows, codes)
        seconds = cpca["seconds"]
        assert isinstance(seconds, float)
        cpca_result["addresses_per_s"] = args.count / seconds
        cpca_hard = run_cpca(hard_addresses, len(hard_addresses), args.cpca_python)
        if "codes" in cpca_hard:
            hard_codes = cpca_hard["codes"]
            assert isinstance(hard_codes, list)
            cpca_result["accuracy_own_set"] = score(hard, hard_codes)

    result = {
        "benchmark": "address_resolver",
        "python": sys.version.split()[0],
        "count": args.count,
        "delivery_sdk": {
            "accuracy": score(rows, our_codes),
            "accuracy_own_set": score(hard, our_hard),
            "addresses_per_s": per_s,
            "addresses_per_s_own_set": per_s_hard,
            "import_ms": import_ms(args.runs),
            "first_resolve_ms_including_import_and_data": first_resolve_ms(args.runs),
            "peak_memory_mb_import_and_data": peak_memory_mb(),
            "peak_memory_mb_resolving_sample": steady_peak,
        },
        "cpca": cpca_result,
        "targets": {"addresses_per_s": 50_000, "import_ms": 100, "memory_mb": 30},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resolver.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
