"""The proof of service as a PDF (reportlab): 送达回证, or 电子送达凭证 for electronic service.

Chinese is set in an embedded CJK TrueType font (subset-embedded; found by
:func:`delivery_sdk._fonts.embedded_cjk_font`: ``font_path``, ``$DELIVERY_SDK_CJK_FONT`` or a system font such
as Debian's fonts-wqy-microhei), so the archived PDF looks the same in every reader; without one,
:class:`~delivery_sdk._fonts.CJKFontMissing` says what to install. The legal basis is cited in Chinese
(:func:`delivery_sdk.law.citations.chinese`); the JSON record keeps the English basis the events recorded.
Times are shown in Beijing time. The PDF is rendered
with reportlab's *invariant* mode (no creation date, a fixed document id), so the same record always
gives the same bytes.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from .._fonts import CJKFontMissing, embedded_cjk_font
from ..law.citations import chinese
from ..law.evidence import Evidence
from ..law.holidays import BEIJING
from ..locale import centre_name
from ..model import BUILTIN_CHANNEL_KINDS, CaseType, ChannelKind, DispatchStatus, DocumentKind, ServiceMethod
from .record import ProofOfService

__all__ = ["CJKFontMissing", "render_pdf", "write_pdf"]

METHOD_LABEL = {
    ServiceMethod.DIRECT: "直接送达",
    ServiceMethod.RETAINED: "留置送达",
    ServiceMethod.ELECTRONIC: "电子送达",
    ServiceMethod.POSTAL: "邮寄送达",
    ServiceMethod.PUBLICATION: "公告送达",
}
CASE_TYPE_LABEL = {
    CaseType.CIVIL: "民事",
    CaseType.COMMERCIAL: "商事",
    CaseType.ADMINISTRATIVE: "行政",
    CaseType.CRIMINAL: "刑事",
    CaseType.ENFORCEMENT: "执行",
}
DOCUMENT_LABEL = {
    DocumentKind.SUMMONS: "传票",
    DocumentKind.NOTICE: "通知书",
    DocumentKind.COMPLAINT: "起诉状副本",
    DocumentKind.JUDGMENT: "判决书",
    DocumentKind.RULING: "裁定书",
    DocumentKind.MEDIATION: "调解书",
    DocumentKind.OTHER: "其他",
}
# the built-in kinds' labels; any kind (a plugin's too) is named by its declared ``ChannelKind.label``
CHANNEL_LABEL: dict[ChannelKind, str] = {kind: kind.label for kind in BUILTIN_CHANNEL_KINDS}
OUTCOME_LABEL = {
    DispatchStatus.QUEUED: "待发出",
    DispatchStatus.SENT: "已发出",
    DispatchStatus.DELIVERED: "已送达",
    DispatchStatus.READ: "已阅读",
    DispatchStatus.FAILED: "失败",
    DispatchStatus.TIMED_OUT: "超时未确认",
    DispatchStatus.PRINTED: "已打印",
    DispatchStatus.MAILED: "已邮寄",
    DispatchStatus.RETURNED: "退回",
    DispatchStatus.SUPERSEDED: "已由其他渠道送达",
}
EVIDENCE_LABEL = {
    Evidence.SIGNED_RECEIPT: "受送达人签收的送达回证",
    Evidence.WITNESS_SIGNATURES: "见证人签名",
    Evidence.PHOTO_VIDEO: "拍照录像",
    Evidence.SYSTEM_TRACE: "系统送达全程记录",
    Evidence.ARRIVAL_TIME: "到达时间",
    Evidence.ESERVICE_VOUCHER: "电子送达凭证",
    Evidence.READ_RECORD: "阅读记录",
    Evidence.REPLY_RECORD: "回复或诉讼行为记录",
    Evidence.RETURN_RECEIPT: "邮件回执",
    Evidence.CARRIER_TRACKING: "邮件跟踪记录",
    Evidence.WAYBILL_NUMBER: "邮件单号",
    Evidence.NOTICE: "公告",
    Evidence.PUBLICATION_DATE: "公告日期",
    Evidence.POSTING_PHOTOS: "张贴照片",
    Evidence.REASON_ON_FILE: "公告原因与经过",
}


# The periods of law.periods.deadlines_after_service, by name.
DEADLINE_LABEL = {"defence": "答辩期", "appeal": "上诉期"}


def _bj(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _outcome(value: str) -> str:
    try:
        return OUTCOME_LABEL[DispatchStatus(value)]
    except ValueError:
        return value


def render_pdf(proof: ProofOfService, *, font_path: str | None = None) -> bytes:
    """The PDF bytes of ``proof``, its CJK font embedded (``font_path``: a .ttf/.ttc to use instead of the
    one found); raises :class:`CJKFontMissing` when no CJK TrueType font can be embedded."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = embedded_cjk_font(font_path).name
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    small = ParagraphStyle("small", parent=body, fontSize=7, leading=9)
    head = ParagraphStyle("head", parent=body, fontSize=11, leading=15, spaceBefore=6, spaceAfter=3)
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=24, alignment=1, spaceAfter=2)
    court = ParagraphStyle("court", parent=body, fontSize=11, leading=15, alignment=1, spaceAfter=8)

    def p(text: object, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(str(text)), style)

    grid = TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), font),  # the tables' default font is Helvetica (not embedded)
            ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ]
    )
    header_row = TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))])
    width = A4[0] - 36 * mm

    def table(rows: list[list[Paragraph]], widths: list[float], header: bool = True) -> Table:
        t = Table(rows, colWidths=[w * width for w in widths], repeatRows=1 if header else 0)
        t.setStyle(grid)
        if header:
            t.setStyle(header_row)
        return t

    case = proof.case
    recipient = proof.recipient
    story: list[Flowable] = [
        p(proof.title, title),
        p(case.court, court),
        table(
            [
                [p("案号"), p(case.case_number), p("案件类型"), p(CASE_TYPE_LABEL[case.case_type])],
                [p("受送达人"), p(recipient.name), p("当事人编号"), p(recipient.party_id)],
                [p("送达方式"), p(METHOD_LABEL[proof.method]), p("送达日期"), p(proof.served_on)],
                [p("生效时间"), p(f"{_bj(proof.effective_at)}（北京时间）"), p("送达记录"), p(proof.dispatch_id or "")],
                [p("法律依据"), p(proof.basis_zh), p("任务编号"), p(proof.task_id)],
            ],
            [0.14, 0.40, 0.14, 0.32],
            header=False,
        ),
        p("送达文书", head),
        table(
            [[p("序号"), p("文书名称"), p("类别"), p("SHA-256 摘要")]]
            + [
                [p(n), p(d.title), p(DOCUMENT_LABEL[d.kind]), p(d.sha256, small)]
                for n, d in enumerate(proof.documents, start=1)
            ],
            [0.06, 0.32, 0.12, 0.50],
        ),
        p("送达经过", head),
        table(
            [
                [
                    p("渠道"),
                    p("联系方式"),
                    p("发出时间（北京时间）"),
                    p("到达/签收时间（北京时间）"),
                    p("结果"),
                    p("说明"),
                ]
            ]
            + [
                [
                    p(f"{a.kind.label}{'（送达）' if a.served else ''}\n{a.channel}", small),
                    p(a.contact, small),
                    p(_bj(a.sent_at or a.queued_at), small),
                    p(_bj(a.delivered_at), small),
                    p(_outcome(a.outcome), small),
                    p(
                        " ".join(
                            x
                            for x in (
                                a.detail,
                                a.waybill and f"单号 {a.waybill}",
                                a.centre_id and centre_name(a.centre_id),
                            )
                            if x
                        ),
                        small,
                    ),
                ]
                for a in proof.attempts
            ],
            [0.18, 0.18, 0.17, 0.17, 0.11, 0.19],
        ),
        p("证据", head),
        table(
            [[p("所需证据（任一）"), p("依据"), p("是否具备")]]
            + [
                [
                    p("；".join(EVIDENCE_LABEL[e] for e in c.any_of)),
                    p(c.basis_zh, small),
                    p("具备：" + "；".join(EVIDENCE_LABEL[e] for e in c.present) if c.present else "缺"),
                ]
                for c in proof.evidence
            ],
            [0.35, 0.40, 0.25],
        ),
    ]
    if proof.deadlines or proof.deadlines_note:
        story += [p("法定期间", head)]
        if proof.deadlines:
            story += [
                table(
                    [[p("期间"), p("届满日期"), p("依据"), p("节假日安排")]]
                    + [
                        [
                            p(f"{DEADLINE_LABEL.get(d.name, d.name)}（{d.days} 日）"),
                            p(f"{d.due}{'（暂定）' if d.provisional else ''}"),
                            p(chinese(d.basis), small),
                            p(d.calendar.split(" (provisional", 1)[0] if d.provisional else d.calendar, small),
                        ]
                        for d in proof.deadlines
                    ],
                    [0.16, 0.18, 0.33, 0.33],
                )
            ]
        if proof.deadlines_note:
            story += [p(proof.deadlines_note, small)]
    if proof.checkpoint is not None:
        cp = proof.checkpoint
        events = len(proof.bundle.get("events", [])) if proof.bundle else 0
        story += [
            p("存证", head),
            table(
                [
                    [p("日志"), p(cp.origin)],
                    [p("检查点大小"), p(cp.tree_size)],
                    [p("根哈希"), p(cp.root, small)],
                    [p("包含证明"), p(f"本任务 {events} 个事件，均附包含证明（见 JSON 记录）")],
                ],
                [0.2, 0.8],
                header=False,
            ),
        ]
    story += [
        Spacer(1, 6 * mm),
        p(f"记录编号 {proof.record_id}　格式 {proof.format}", small),
        p(f"记录摘要 SHA-256 {proof.digest}", small),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{proof.title} {case.case_number}",
        author=case.court,
        creator="delivery-sdk",
        invariant=1,
        initialFontName=font,  # not Helvetica: every font on the page is the embedded one
    )
    doc.build(story)
    return out.getvalue()


def write_pdf(proof: ProofOfService, path: str | Path) -> Path:
    """Write the PDF of ``proof`` to ``path`` (not atomically: see the case-folder sink for that)."""
    target = Path(path)
    target.write_bytes(render_pdf(proof))
    return target
