"""Batches: released at the centre's cut-offs (working days, Beijing time) or by size during opening hours,
each with a manifest that carries no personal data; the spool survives an interrupted release."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import attrs

from delivery_sdk.printing.batch import MANIFEST_FORMAT, BatchSpool
from delivery_sdk.printing.centres import default_centres
from delivery_sdk.printing.package import PrintPackage

TUE_0900 = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # Beijing 09:00, Tuesday
WUHAN = default_centres().get("PC-420100")


def pkg(n: int) -> PrintPackage:
    pdf = f"%PDF-1.4 package {n} 张三丰 湖北省武汉市".encode()
    return PrintPackage(dispatch_id=f"T{n:04d}.2", task_id=f"T{n:04d}", pdf=pdf, pages=4, sha256=f"{n:064x}")


def at(hour: int, minute: int = 0, day: int = 3) -> datetime:
    return datetime(2026, 3, day, hour - 8, minute, tzinfo=UTC)


def test_batch_released_at_the_cutoff_with_a_manifest(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path)
    for n in (1, 2, 3):
        assert spool.add(WUHAN.centre_id, pkg(n), TUE_0900)
    assert not spool.add(WUHAN.centre_id, pkg(1), TUE_0900)  # idempotent on the dispatch id
    assert spool.where("T0001.2", WUHAN.centre_id) == "pending"
    assert spool.due(WUHAN, at(10, 59)) is None
    assert spool.due(WUHAN, at(11)) == "cut-off 11:00"
    manifest = spool.release(WUHAN, at(11), "cut-off 11:00")
    assert manifest is not None
    data = json.loads((tmp_path / "PC-420100" / "released" / manifest.batch_id / "manifest.json").read_bytes())
    assert data["format"] == MANIFEST_FORMAT
    assert data["batch_id"].startswith("PC-420100-20260303-1100-")
    assert (data["centre_id"], data["count"], data["total_pages"]) == ("PC-420100", 3, 12)
    assert data["released_at"] == "2026-03-03T11:00:00+08:00"
    assert [j["dispatch_id"] for j in data["jobs"]] == ["T0001.2", "T0002.2", "T0003.2"]
    assert data["jobs"][0] == {
        "dispatch_id": "T0001.2",
        "task_id": "T0001",
        "file": "T0001.2.pdf",
        "pages": 4,
        "bytes": len(pkg(1).pdf),
        "sha256": f"{1:064x}",
    }
    text = json.dumps(data, ensure_ascii=False)
    assert "张三丰" not in text
    assert "湖北" not in text
    assert spool.pending(WUHAN.centre_id) == []
    assert spool.where("T0002.2", WUHAN.centre_id) == manifest.batch_id
    assert spool.package_path(WUHAN.centre_id, manifest.batch_id, "T0002.2").read_bytes() == pkg(2).pdf
    assert [m.batch_id for m in spool.released(WUHAN.centre_id)] == [manifest.batch_id]
    assert spool.where("T9999.2", WUHAN.centre_id) is None


def test_batch_released_by_size_only_while_open_and_cutoffs_skip_rest_days(tmp_path: Path) -> None:
    small = attrs.evolve(WUHAN, batch_size=2)
    spool = BatchSpool(tmp_path)
    spool.add(small.centre_id, pkg(1), at(9, 10))
    assert spool.due(small, at(9, 20)) is None
    spool.add(small.centre_id, pkg(2), at(9, 30))
    assert spool.due(small, at(9, 30)) == "size"
    spool.add(small.centre_id, pkg(3), at(9, 31))
    first = spool.release(small, at(9, 31), "size")
    assert first is not None
    assert [j.dispatch_id for j in first.jobs] == ["T0001.2", "T0002.2"]
    assert [j.dispatch_id for j in spool.pending(small.centre_id)] == ["T0003.2"]
    # Friday 2026-03-06 18:00: full by size but closed; the cut-off is Monday 11:00
    friday = BatchSpool(tmp_path / "friday")
    friday.add(small.centre_id, pkg(4), at(18, 0, day=6))
    friday.add(small.centre_id, pkg(5), at(18, 1, day=6))
    assert friday.due(small, at(18, 2, day=6)) is None
    assert friday.due(small, at(10, 59, day=9)) == "size"  # Monday, open: the size rule applies
    one = attrs.evolve(WUHAN, batch_size=10)
    assert friday.due(one, at(10, 59, day=9)) is None
    assert friday.due(one, at(11, 0, day=9)) == "cut-off 11:00"


def test_an_interrupted_release_is_completed_when_the_spool_reopens(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path)
    spool.add(WUHAN.centre_id, pkg(1), TUE_0900)
    spool.add(WUHAN.centre_id, pkg(2), TUE_0900)
    # a release that crashed after moving T0001's entry, before its PDF and the manifest
    batch = tmp_path / "PC-420100" / "released" / "PC-420100-20260303-1100-deadbeef"
    batch.mkdir(parents=True)
    pending = tmp_path / "PC-420100" / "pending"
    os.replace(pending / "T0001.2.json", batch / "T0001.2.json")
    reopened = BatchSpool(tmp_path)
    [manifest] = reopened.released(WUHAN.centre_id)
    assert manifest.batch_id == batch.name
    assert [j.dispatch_id for j in manifest.jobs] == ["T0001.2"]
    assert (batch / "T0001.2.pdf").read_bytes() == pkg(1).pdf
    assert [j.dispatch_id for j in reopened.pending(WUHAN.centre_id)] == ["T0002.2"]
