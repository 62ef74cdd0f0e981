"""The proof-of-service record (JSON) and its PDF, built from the ServiceRecords the engine files."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pypdf
import pytest

from delivery_sdk import Contact, ContactKind, DeliveryError, ValidationError
from delivery_sdk.events import DispatchQueued, PublicationStarted, StoredEvent
from delivery_sdk.law.evidence import Evidence
from delivery_sdk.law.service import BASIS_ELECTRONIC_READ, BASIS_PUBLICATION
from delivery_sdk.model import ChannelKind, ServiceMethod
from delivery_sdk.proof import (
    PROOF_FORMAT,
    TITLE_ELECTRONIC,
    TITLE_PAPER,
    CJKFontMissing,
    ProofOfService,
    build_record,
    canonical_digest,
    record_from_json,
    record_to_json,
    render_pdf,
    verify_record,
)
from delivery_sdk.records import AddressCandidate, ServiceRecord
from delivery_sdk.serialization import unstructure
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

ADDRESS = "湖北省宜昌市夷陵区小溪塔街道发展大道57号"


def _electronic() -> ServiceRecord:
    async def main() -> ServiceRecord:
        h = Harness()
        h.sms.enqueue(Outcome.failed("no such number"))
        h.eservice.enqueue(Outcome.no_answer())
        h.wechat.enqueue(Outcome.delivered())
        tid = await h.client.submit(make_request(make_party("P-e", eservice="acc123", wechat="wx_openid_1")))
        await h.client.run_until_idle()
        record = h.sink.filed[f"{tid}:proof"]
        await h.aclose()
        return record

    return asyncio.run(main())


def _postal() -> ServiceRecord:
    async def main() -> ServiceRecord:
        h = Harness()
        h.carrier.enqueue(Outcome.returned("address_wrong"), Outcome.signed())
        h.addresses.candidates["P-post"] = [
            AddressCandidate(
                contact=Contact(kind=ContactKind.POSTAL, value=ADDRESS, division_code="420506"),
                source="household_registry",
                confidence=0.8,
            )
        ]
        tid = await h.client.submit(make_request(make_party("P-post", mobile=None, consent=False)))
        await h.client.run_until_idle()
        record = h.sink.filed[f"{tid}:proof"]
        await h.aclose()
        return record

    return asyncio.run(main())


@pytest.fixture(scope="module")
def electronic() -> ServiceRecord:
    return _electronic()


@pytest.fixture(scope="module")
def postal() -> ServiceRecord:
    return _postal()


def test_electronic_record_carries_case_recipient_documents_method_time_and_basis(electronic: ServiceRecord) -> None:
    proof = build_record(electronic)
    assert proof.format == PROOF_FORMAT
    assert proof.title == TITLE_ELECTRONIC == "电子送达凭证"
    assert proof.record_id == electronic.record_id == f"{electronic.task_id}:proof"
    assert (proof.case.court, proof.case.case_number) == ("武汉市武昌区人民法院", "(2026)鄂0106民初1号")
    assert (proof.recipient.party_id, proof.recipient.name) == ("P-e", "张三")
    assert [(d.title, d.sha256) for d in proof.documents] == [
        ("传票", "cb7017b262edfc56410badeb324d7296595549c6c0bc4d4a9edb308369930164")
    ]
    assert proof.method is ServiceMethod.ELECTRONIC
    assert proof.basis == "CPL Art. 90; SPC Online Litigation Rules Art. 31"
    assert proof.effective_at == datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
    assert proof.served_on == "2026-11-03"
    assert proof.dispatch_id == electronic.dispatch_id


def test_electronic_trail_lists_every_attempt_with_masked_contacts(electronic: ServiceRecord) -> None:
    proof = build_record(electronic)
    trail = [(a.kind, a.channel, a.contact, a.outcome, a.detail, a.served) for a in proof.attempts]
    assert trail == [
        (ChannelKind.ESERVICE, "fake-eservice", "ac**23", "timed_out", None, False),
        (ChannelKind.SMS, "fake-sms", "13*******00", "failed", "no such number", False),
        (ChannelKind.WECHAT, "fake-wechat", "wx*******_1", "delivered", None, True),
    ]
    served = proof.attempts[-1]
    assert served.delivered_at == proof.effective_at
    text = record_to_json(proof)
    for secret in ("13800138000", "acc123", "wx_openid_1"):
        assert secret not in text


def test_electronic_evidence_is_complete_from_the_timeline(electronic: ServiceRecord) -> None:
    proof = build_record(electronic)
    assert [(c.any_of, c.present) for c in proof.evidence] == [
        ((Evidence.SYSTEM_TRACE,), (Evidence.SYSTEM_TRACE,)),
        ((Evidence.ARRIVAL_TIME,), (Evidence.ARRIVAL_TIME,)),
        ((Evidence.ESERVICE_VOUCHER,), (Evidence.ESERVICE_VOUCHER,)),
    ]
    assert proof.evidence_complete


def test_unconfirmed_electronic_address_also_needs_a_read_or_reply_record(electronic: ServiceRecord) -> None:
    proof = build_record(attrs.evolve(electronic, basis=BASIS_ELECTRONIC_READ))
    last = proof.evidence[-1]
    assert last.any_of == (Evidence.READ_RECORD, Evidence.REPLY_RECORD)
    assert last.present == ()  # the fake reported arrival, not reading
    assert not proof.evidence_complete


def test_postal_record_shows_both_rounds_the_waybill_and_who_signed(postal: ServiceRecord) -> None:
    proof = build_record(postal)
    assert proof.title == TITLE_PAPER == "送达回证"
    assert proof.method is ServiceMethod.POSTAL
    assert proof.basis == "CPL Art. 91"
    assert proof.effective_at == datetime(2026, 11, 8, 13, 0, tzinfo=UTC)
    assert proof.served_on == "2026-11-08"  # 21:00 Beijing time, the same day
    assert [(a.kind, a.outcome, a.detail, a.centre_id, a.served) for a in proof.attempts] == [
        (ChannelKind.PRINT, "returned", "address_wrong", "PC-420100", False),
        (ChannelKind.PRINT, "delivered", "recipient", "PC-420500", True),
    ]
    assert all(a.waybill for a in proof.attempts)
    assert ADDRESS not in record_to_json(proof)
    assert proof.attempts[1].contact == "湖北" + "*" * (len(ADDRESS) - 4) + "7号"
    assert [c.present for c in proof.evidence] == [
        (Evidence.CARRIER_TRACKING, Evidence.RETURN_RECEIPT),
        (Evidence.WAYBILL_NUMBER,),
    ]
    assert proof.evidence_complete


def _publication_record() -> ServiceRecord:
    at = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    request = make_request(make_party("P-pub"))
    timeline = (
        StoredEvent(
            seq=7, task_seq=5, event=PublicationStarted(task_id="T9", at=at, published_at=at, reason="下落不明")
        ),
    )
    return ServiceRecord(
        record_id="T9:proof",
        task_id="T9",
        case=request.case,
        party_id="P-pub",
        documents=request.documents,
        method=ServiceMethod.PUBLICATION,
        basis=BASIS_PUBLICATION,
        effective_at=datetime(2026, 2, 4, 16, 0, tzinfo=UTC),
        dispatch_id=None,
        timeline=timeline,
    )


def test_publication_lacks_notice_and_photos_until_the_caller_holds_them() -> None:
    record = _publication_record()
    with pytest.raises(ValidationError, match="recipient_name"):
        build_record(record)
    proof = build_record(record, recipient_name="李四")
    assert proof.recipient.name == "李四"
    assert proof.attempts == ()
    assert proof.served_on == "2026-02-05"  # 00:00 Beijing time on the next day
    missing = [c.any_of for c in proof.evidence if not c.met]
    assert missing == [(Evidence.NOTICE,), (Evidence.POSTING_PHOTOS,)]
    assert not proof.evidence_complete
    held = build_record(record, recipient_name="李四", held=[Evidence.NOTICE, Evidence.POSTING_PHOTOS])
    assert held.evidence_complete
    assert held.digest != proof.digest


def test_json_round_trips_and_the_digest_is_deterministic(postal: ServiceRecord) -> None:
    proof = build_record(postal)
    assert build_record(postal) == proof
    text = record_to_json(proof)
    assert record_from_json(text) == proof
    data = json.loads(text)
    assert data["recipient"]["name"] == "张三"  # in clear: a court document
    assert data["effective_at"] == "2026-11-08T13:00:00+00:00"
    assert canonical_digest(data) == proof.digest
    data["basis"] = "CPL Art. 90"
    assert canonical_digest(data) != proof.digest


def test_repr_masks_the_recipients_name(electronic: ServiceRecord) -> None:
    proof = build_record(electronic)
    assert "张三" not in repr(proof)
    assert "张三" not in repr(proof.recipient)


def test_reading_refuses_another_format_and_malformed_fields(postal: ServiceRecord) -> None:
    data = unstructure(build_record(postal))
    with pytest.raises(ValidationError, match="not a delivery-sdk/proof-of-service/v1 record"):
        record_from_json(json.dumps({**data, "format": "delivery-sdk/proof-of-service/v0"}))
    with pytest.raises(ValidationError, match="not valid JSON"):
        record_from_json("{")
    bad = {**data, "documents": [{**data["documents"][0], "sha256": "abc"}]}
    with pytest.raises(ValidationError, match=r"documents\[0\]"):
        record_from_json(json.dumps(bad))
    with pytest.raises(ValidationError):
        record_from_json(json.dumps({**data, "effective_at": "2026-11-09T13:00:00"}))  # no offset


def test_a_bundle_of_another_task_is_refused(postal: ServiceRecord) -> None:
    with pytest.raises(ValidationError, match="bundle is of task"):
        build_record(postal, bundle={"format": "delivery-sdk/proof-bundle/v1", "task_id": "OTHER"})


def test_the_trail_ignores_nothing_the_timeline_queued(electronic: ServiceRecord) -> None:
    queued = [s.event.dispatch_id for s in electronic.timeline if isinstance(s.event, DispatchQueued)]
    assert [a.dispatch_id for a in build_record(electronic).attempts] == queued


# ---------------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------------


def _pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def _unwrapped(data: bytes) -> str:
    """The PDF's text without the line breaks a table cell puts into a long citation."""
    return re.sub(r"\s+", "", _pdf_text(data))


def _embedded_fonts(data: bytes) -> list[str]:
    """The base names of the page fonts whose program is embedded (a TrueType FontFile2)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    out = []
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            described = descendants[0].get_object() if descendants else font
            descriptor = described.get("/FontDescriptor")
            if descriptor is not None and "/FontFile2" in descriptor.get_object():
                out.append(str(font["/BaseFont"]))
    return out


def test_electronic_pdf_embeds_its_cjk_font_and_cites_the_law_in_chinese(electronic: ServiceRecord) -> None:
    proof = build_record(electronic)
    data = render_pdf(proof)
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    reader = pypdf.PdfReader(io.BytesIO(data))
    fonts = [str(f.get_object()["/BaseFont"]) for f in reader.pages[0]["/Resources"]["/Font"].values()]
    assert not any(f.startswith("/STSong-Light") for f in fonts), fonts  # no font the reader must supply
    assert _embedded_fonts(data), fonts
    assert all(re.match(r"/[A-Z]{6}\+", f) for f in _embedded_fonts(data))  # subsets
    flat = _unwrapped(data)
    assert "《中华人民共和国民事诉讼法》第九十条；《人民法院在线诉讼规则》第三十一条" in flat
    assert "CPL Art." not in flat  # the English basis stays in the JSON record, not on the page for staff
    assert proof.basis == "CPL Art. 90; SPC Online Litigation Rules Art. 31"  # the record is unchanged
    assert proof.basis_zh == "《中华人民共和国民事诉讼法》第九十条；《人民法院在线诉讼规则》第三十一条"
    text = _pdf_text(data)
    for expected in (
        "电子送达凭证",
        "武汉市武昌区人民法院",
        "(2026)鄂0106民初1号",
        "张三",
        "传票",
        "电子送达",
        "2026-11-03 09:00:00（北京时间）",
        "短信",
        "13*******00",
        "no such number",
        "超时未确认",
        proof.digest,
    ):
        assert expected in text, expected
    assert "cb7017b262edfc56" in text  # the document digest (wrapped in its cell)
    assert "13800138000" not in text
    assert "存证" not in text  # no bundle, no evidence-log section


def test_pdffonts_lists_the_cjk_font_embedded(electronic: ServiceRecord, tmp_path: Path) -> None:
    path = tmp_path / "proof.pdf"
    path.write_bytes(render_pdf(build_record(electronic)))
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines()[2:]]
    assert rows, listing
    for row in rows:  # every font (the CJK TrueType one, whatever its family) embedded as a subset
        name, emb, sub = row[0], row[-5], row[-4]
        assert (emb, sub) == ("yes", "yes"), listing
        assert re.match(r"[A-Z]{6}\+", name), listing
    # and poppler reads the Chinese citation back
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "第九十条" in text


def test_evidence_rows_cite_the_law_in_chinese(postal: ServiceRecord) -> None:
    proof = build_record(postal)
    flat = _unwrapped(render_pdf(proof))
    for check in proof.evidence:
        assert re.sub(r"\s+", "", check.basis_zh) in flat
        assert check.basis_zh.startswith("《")
    assert "《中华人民共和国民事诉讼法》第九十一条" in flat


def test_no_embeddable_cjk_font_is_a_typed_error_that_says_what_to_install(electronic: ServiceRecord) -> None:
    proof = build_record(electronic)
    with pytest.raises(CJKFontMissing, match="fonts-wqy-microhei") as caught:
        render_pdf(proof, font_path="/nonexistent/font.ttf")
    assert isinstance(caught.value, DeliveryError)
    assert "DELIVERY_SDK_CJK_FONT" in str(caught.value)


def test_the_json_record_keeps_the_english_basis_and_verifies(electronic: ServiceRecord) -> None:
    proof = build_record(electronic)
    data = json.loads(record_to_json(proof))
    assert data["basis"] == "CPL Art. 90; SPC Online Litigation Rules Art. 31"
    assert "basis_zh" not in data  # derived for display, not part of the signed format
    assert verify_record(record_to_json(proof)).ok


def test_postal_pdf_is_a_songda_huizheng_and_rendering_is_deterministic(postal: ServiceRecord) -> None:
    proof = build_record(postal)
    data = render_pdf(proof)
    assert render_pdf(proof) == data
    text = _pdf_text(data)
    for expected in (
        "送达回证",
        "邮寄送达",
        "2026-11-08 21:00:00（北京时间）",
        "退回",
        "已送达",
        "邮件回执",
    ):
        assert expected in text, expected
    assert "《中华人民共和国民事诉讼法》第九十一条" in _unwrapped(data)
    assert "电子送达凭证" not in text.split("\n")[0]


def test_pdf_shows_the_checkpoint_when_a_bundle_is_attached(electronic: ServiceRecord) -> None:
    from delivery_sdk.evidence import Checkpoint, Signer, sign_checkpoint

    signer = Signer.generate("court.example/delivery")
    note = sign_checkpoint(Checkpoint("court.example/delivery", 40, bytes(range(32))), [signer])
    bundle = {
        "format": "delivery-sdk/proof-bundle/v1",
        "task_id": electronic.task_id,
        "tree_size": 40,
        "checkpoint": note,
        "events": [],
    }
    proof = build_record(electronic, bundle=bundle)
    assert proof.checkpoint is not None
    assert (proof.checkpoint.origin, proof.checkpoint.tree_size) == ("court.example/delivery", 40)
    text = _pdf_text(render_pdf(proof))
    assert "存证" in text
    assert "court.example/delivery" in text
    assert proof.checkpoint.root[:20] in text


def test_a_proof_is_a_frozen_attrs_class() -> None:
    assert attrs.has(ProofOfService)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        build_record(_publication_record(), recipient_name="李四").basis = "x"  # type: ignore[misc]


def test_the_python_examples_in_the_docs_run() -> None:
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "proof-of-service.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(page), "exec"), {})
