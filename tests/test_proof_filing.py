"""Filing the proof of service into a case folder, and ``delivery-sdk verify-record`` on what was filed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import attrs
import pytest

from delivery_sdk import SQLiteStore, TaskState
from delivery_sdk.builtins import case_folder
from delivery_sdk.builtins.case_folder import CaseFolderSink, safe_name
from delivery_sdk.cli import main
from delivery_sdk.evidence.audit import export_bundle
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.proof import build_record, canonical_digest, record_from_json, record_to_json, verify_record
from delivery_sdk.records import ServiceRecord
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

ORIGIN = "court.example/delivery"
SIGNER = Signer.generate(ORIGIN)
OTHER = Signer.generate(ORIGIN)  # same name, another key


def _run(store: SQLiteStore, folder: Path | None = None) -> tuple[list[str], dict[str, ServiceRecord]]:
    """One electronic and one postal task, both filed; returns their ids and the ServiceRecords filed."""

    async def go() -> tuple[list[str], dict[str, ServiceRecord]]:
        extra = [CaseFolderSink(folder)] if folder is not None else []
        h = Harness(store, extra_plugins=extra)
        h.client.engine.signers = (SIGNER,)
        h.client.engine.origin = ORIGIN
        h.sms.enqueue(Outcome.delivered())
        h.carrier.enqueue(Outcome.signed())
        ids = [
            await h.client.submit(make_request(make_party("P-e"), case_number="(2026)鄂0106民初7号")),
            await h.client.submit(make_request(make_party("P-p", mobile=None, consent=False))),
        ]
        await h.client.run_until_idle()
        assert [h.client.status(t).state for t in ids] == [TaskState.FILED, TaskState.FILED]
        filed = dict(h.sink.filed)
        await h.aclose()
        return ids, filed

    return asyncio.run(go())


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, ServiceRecord], Path]:
    base = tmp_path_factory.mktemp("proof")
    path = base / "store.sqlite3"
    folder = base / "cases"
    ids, filed = _run(SQLiteStore(path, evidence=True), folder)
    return path, ids, filed, folder


# ---------------------------------------------------------------------------------------------------
# The case-folder sink
# ---------------------------------------------------------------------------------------------------


def test_the_sink_files_json_and_pdf_per_case(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path],
) -> None:
    _, ids, filed, folder = signed
    court = folder / "武汉市武昌区人民法院"
    electronic = court / "(2026)鄂0106民初7号" / f"{ids[0]}.json"
    postal = court / "(2026)鄂0106民初1号" / f"{ids[1]}.json"
    for path, title in ((electronic, "电子送达凭证"), (postal, "送达回证")):
        proof = record_from_json(path.read_bytes())
        assert proof.title == title
        assert proof.record_id == filed[proof.record_id].record_id
        assert path.with_suffix(".pdf").read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in court.rglob("*")) == sorted(
        [
            "(2026)鄂0106民初7号",
            "(2026)鄂0106民初1号",
            f"{ids[0]}.json",
            f"{ids[0]}.pdf",
            f"{ids[1]}.json",
            f"{ids[1]}.pdf",
        ]
    )  # no temporary files left behind


def test_the_engine_records_the_json_path_as_the_case_file_reference(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path],
) -> None:
    path, ids, _, folder = signed
    with SQLiteStore(path) as store:
        events = store.load_events([ids[0]])[ids[0]]
    filed = [s.event for s in events if s.event.TYPE == "service.filed"]
    assert len(filed) == 1
    expected = str(folder / "武汉市武昌区人民法院" / "(2026)鄂0106民初7号" / f"{ids[0]}.json")
    assert expected in filed[0].filed_by  # type: ignore[attr-defined]


def test_filing_twice_is_a_no_op_with_the_same_reference(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ids, filed, folder = signed
    record = filed[f"{ids[0]}:proof"]
    sink = CaseFolderSink(folder)
    json_path, pdf_path = sink.paths(record)
    before = (json_path.stat().st_mtime_ns, pdf_path.stat().st_mtime_ns, json_path.read_bytes())
    writes: list[Path] = []
    monkeypatch.setattr(case_folder, "_write_atomic", lambda target, data: writes.append(target))
    assert sink.delivery_file_service_record(record) == str(json_path)
    assert sink.delivery_file_service_record(record) == str(json_path)
    assert writes == []
    assert (json_path.stat().st_mtime_ns, pdf_path.stat().st_mtime_ns, json_path.read_bytes()) == before


def test_a_fresh_sink_writes_the_same_bytes_for_the_same_record(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path], tmp_path: Path
) -> None:
    _, ids, filed, folder = signed
    record = filed[f"{ids[1]}:proof"]
    ref = CaseFolderSink(tmp_path).delivery_file_service_record(record)
    original, _ = CaseFolderSink(folder).paths(record)
    assert Path(ref).read_bytes() == original.read_bytes()
    assert Path(ref).with_suffix(".pdf").read_bytes() == original.with_suffix(".pdf").read_bytes()


def test_another_record_at_the_same_place_is_not_overwritten(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path], tmp_path: Path
) -> None:
    import attrs

    _, ids, filed, _ = signed
    record = filed[f"{ids[0]}:proof"]
    sink = CaseFolderSink(tmp_path)
    ref = sink.delivery_file_service_record(record)
    before = Path(ref).read_bytes()
    with pytest.raises(FileExistsError, match="holds another record"):
        sink.delivery_file_service_record(attrs.evolve(record, record_id="other:proof"))
    assert Path(ref).read_bytes() == before


def test_a_crash_while_writing_leaves_no_record_and_no_temporary_file(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ids, filed, _ = signed
    record = filed[f"{ids[0]}:proof"]
    sink = CaseFolderSink(tmp_path)
    json_path, pdf_path = sink.paths(record)
    real_replace = os.replace

    def crash_on_json(src: str, dst: str | Path) -> None:
        if str(dst).endswith(".json"):
            raise OSError("disk full (scripted)")
        real_replace(src, dst)

    monkeypatch.setattr(case_folder.os, "replace", crash_on_json)
    with pytest.raises(OSError, match="disk full"):
        sink.delivery_file_service_record(record)
    assert not json_path.exists()  # not filed: the engine will retry
    assert [p.name for p in json_path.parent.iterdir()] == [pdf_path.name]
    monkeypatch.setattr(case_folder.os, "replace", real_replace)
    assert sink.delivery_file_service_record(record) == str(json_path)  # the retry files it
    assert record_from_json(json_path.read_bytes()).record_id == record.record_id


def test_pdf_can_be_left_out(signed: tuple[Path, list[str], dict[str, ServiceRecord], Path], tmp_path: Path) -> None:
    _, ids, filed, _ = signed
    ref = CaseFolderSink(tmp_path, pdf=False).delivery_file_service_record(filed[f"{ids[0]}:proof"])
    assert Path(ref).exists()
    assert not Path(ref).with_suffix(".pdf").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(2026)鄂0106民初1号", "(2026)鄂0106民初1号"),
        ("a/b\\c:d*e?f", "a_b_c_d_e_f"),
        ("..", "_.."),
        (".hidden", "_.hidden"),
        ("  ", "_"),
        ("x\x00y\n", "x_y_"),
    ],
)
def test_safe_name_keeps_a_name_inside_its_folder(text: str, expected: str) -> None:
    assert safe_name(text) == expected


# ---------------------------------------------------------------------------------------------------
# verify-record
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def record_file(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path, ids, filed, _ = signed
    proof = build_record(filed[f"{ids[0]}:proof"], bundle=export_bundle(path, ids[0]))
    out = tmp_path_factory.mktemp("records") / "record.json"
    out.write_text(record_to_json(proof), encoding="utf-8")
    return out


def _tampered(src: Path, dst: Path, change: dict[str, object], *, redigest: bool = False) -> Path:
    data = json.loads(src.read_text(encoding="utf-8"))
    data.update(change)
    if redigest:
        data["digest"] = canonical_digest(data)
    dst.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return dst


def test_verify_record_passes_with_the_trusted_key(record_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify-record", str(record_file), "--key", SIGNER.vkey, "--origin", ORIGIN]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 电子送达凭证 ")
    assert "events proven against the checkpoint" in out
    check = verify_record(record_file.read_bytes(), [SIGNER.vkey])
    assert check.ok
    assert check.record is not None
    assert check.events_proven == len(check.record.bundle["events"])  # type: ignore[index]
    assert check.events_proven >= len(check.record.attempts) + 2


def test_verify_record_without_a_key_checks_the_proofs_and_says_the_signature_was_not(
    record_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify-record", str(record_file)]) == 0
    assert "note: checkpoint signature not checked" in capsys.readouterr().out


def test_verify_record_fails_on_a_changed_field(
    record_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _tampered(record_file, tmp_path / "bad.json", {"effective_at": "2026-11-01T01:00:00+00:00"})
    assert main(["verify-record", str(bad), "--key", SIGNER.vkey]) == 1
    out = capsys.readouterr().out
    assert "FAIL: the record's digest does not match its content" in out
    assert "FAIL: the method, basis, effective time or dispatch differ from the proven service.served" in out


def test_verify_record_fails_on_a_forged_record_with_a_recomputed_digest(
    record_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(record_file.read_text(encoding="utf-8"))
    doc = {**data["documents"][0], "sha256": "0" * 64}
    bad = _tampered(record_file, tmp_path / "forged.json", {"documents": [doc]}, redigest=True)
    assert main(["verify-record", str(bad), "--key", SIGNER.vkey]) == 1
    out = capsys.readouterr().out
    assert "digest does not match" not in out
    assert "FAIL: the documents (titles or digests) differ from the proven task.created event" in out


def test_verify_record_fails_on_a_changed_proven_event(
    record_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(record_file.read_text(encoding="utf-8"))
    data["bundle"]["events"][1]["event"]["channel"] = "forged-sms"
    bad = _tampered(record_file, tmp_path / "event.json", {"bundle": data["bundle"]}, redigest=True)
    assert main(["verify-record", str(bad), "--key", SIGNER.vkey]) == 1
    out = capsys.readouterr().out
    assert "FAIL: the proof bundle does not verify" in out


def test_verify_record_fails_with_an_untrusted_key(record_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify-record", str(record_file), "--key", OTHER.vkey]) == 1
    assert "FAIL: the proof bundle does not verify" in capsys.readouterr().out


def test_verify_record_checks_document_files(record_file: Path, tmp_path: Path) -> None:
    good = tmp_path / "summons.pdf"
    good.write_bytes(b"summons")  # make_request's document digest is SHA-256("summons")
    other = tmp_path / "other.pdf"
    other.write_bytes(b"not the summons")
    assert main(["verify-record", str(record_file), "--key", SIGNER.vkey, "--document", str(good)]) == 0
    assert main(["verify-record", str(record_file), "--key", SIGNER.vkey, "--document", str(other)]) == 1


def test_verify_record_without_a_bundle_checks_the_digest_and_notes_it(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, ids, filed, _ = signed
    unproven = attrs.evolve(filed[f"{ids[1]}:proof"], proof_bundle=None)
    json_path = CaseFolderSink(tmp_path).delivery_file_service_record(unproven)
    assert main(["verify-record", str(json_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 送达回证 ")
    assert "note: no proof bundle" in out


def test_the_engine_files_records_that_carry_their_proofs(
    signed: tuple[Path, list[str], dict[str, ServiceRecord], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """With a signing key, the engine signs a checkpoint covering the service before it files, so the proof
    of service in the case folder carries the task's inclusion proofs (issue 7, item 3)."""
    _, ids, filed, folder = signed
    record = filed[f"{ids[1]}:proof"]
    assert record.proof_bundle is not None
    json_path, _ = CaseFolderSink(folder).paths(record)
    assert main(["verify-record", str(json_path), "--key", SIGNER.vkey]) == 0
    assert "events proven against the checkpoint" in capsys.readouterr().out


def test_verify_record_refuses_what_is_not_a_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "x.json"
    other.write_text('{"format": "delivery-sdk/proof-bundle/v1"}', encoding="utf-8")
    assert main(["verify-record", str(other)]) == 1
    assert "FAIL: not a delivery-sdk/proof-of-service/v1 record" in capsys.readouterr().out
    other.write_text("not json", encoding="utf-8")
    assert main(["verify-record", str(other)]) == 1
    assert main(["verify-record", str(tmp_path / "missing.json")]) == 2


def test_verify_record_fails_on_an_inconsistent_summary(record_file: Path, tmp_path: Path) -> None:
    bad = _tampered(record_file, tmp_path / "t.json", {"title": "送达回证", "served_on": "2026-01-01"}, redigest=True)
    check = verify_record(bad.read_bytes(), [SIGNER.vkey])
    assert not check.ok
    assert any("does not fit method electronic" in p for p in check.problems)
    assert any("not the Beijing date" in p for p in check.problems)


def test_the_case_folder_sink_is_registered_from_the_environment(tmp_path: Path) -> None:
    import asyncio

    from delivery_sdk import AsyncDeliveryClient, ChannelKind, SQLiteStore, SystemClock
    from delivery_sdk.testing import FakeChannel, Outcome, channels_plugin, make_party, make_request

    async def main() -> None:
        # on the wall clock, as the client: the engine believes no report dated before its dispatch
        sms = FakeChannel("sms", ChannelKind.SMS, clock=SystemClock(), default=Outcome.delivered())
        client = AsyncDeliveryClient(
            SQLiteStore(),
            plugins=[channels_plugin(sms)],
            load_entry_points=False,
            environ={"DELIVERY_SDK_CASE_FOLDER": str(tmp_path)},
        )
        task_id = await client.submit(make_request(make_party()))
        await client.run_until_idle()
        filed = client.task(task_id)
        assert filed.record_id == f"{task_id}:proof"
        [json_file] = list(tmp_path.rglob(f"{task_id}.json"))
        assert json_file.with_suffix(".pdf").exists()
        await client.aclose()

    asyncio.run(main())
