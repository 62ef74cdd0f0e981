"""A local print/mail centre speaking the plugin's protocol, for tests and demos.

:class:`CentreEmulator` runs a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (an ephemeral port) and answers
``PUT /jobs/{dispatch_id}``, ``PUT /batches/{batch_id}`` and ``GET /jobs/{dispatch_id}`` as the module
docstring of :mod:`delivery_sdk_printcentre` describes; :meth:`CentreEmulator.push` posts a job's signed
acknowledgements to a callback URL the way a centre does.

Every job is checked: the bearer token, the idempotency key (the dispatch id of the path), the PDF (its
SHA-256 against ``X-Job-Sha256``, its page count read back with pypdf against ``X-Job-Pages``); a violation
answers 400 and is kept in ``errors``. A job is printed ``print_after`` the arrival of its batch's manifest,
enveloped ``envelope_after`` it and handed to the carrier ``mail_after`` it, with the waybill it came with
(``X-Waybill``) or one of the centre's own; ``now()`` decides what is visible, so a test drives the centre
with the engine's virtual clock. Faults: ``down = True`` answers 503 to everything; :meth:`fail` scripts the
next request to a path (a status with headers, say 429 + ``Retry-After``, or a delay after the work is done,
longer than the client's timeout). ``puts[dispatch_id]`` counts the job PUTs the centre processed.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Unpack
from urllib.parse import unquote

import attrs

from delivery_sdk.callbacks import sign_callback
from delivery_sdk.testing.emulator import (
    Answer,
    BearerApiEmulator,
    BearerApiOptions,
    PathFault,
    join_callback,
    serve_sandbox_main,
)

__all__ = ["CentreEmulator", "Fault", "Job", "main", "sandbox"]


Fault = PathFault  # a scripted answer for the next request to a path (see delivery_sdk.testing.emulator)


@attrs.define
class Job:
    """A print job the emulated centre holds (one dispatch's package)."""

    dispatch_id: str
    task_id: str
    batch_id: str
    sha256: str
    pages: int
    waybill: str
    received_at: datetime
    pdf: bytes = attrs.field(repr=False)
    batch_at: datetime | None = None  # when its batch's manifest arrived: printing starts then


class CentreEmulator(BearerApiEmulator):
    """A print centre on 127.0.0.1 (see the module docstring). Use as a context manager; ``url`` is its base."""

    default_token = "centre-token"
    default_callback_secret = "centre-callback-secret"

    def __init__(
        self,
        *,
        centre_id: str = "PC-420100",
        print_after: timedelta = timedelta(hours=2),
        envelope_after: timedelta = timedelta(hours=3),
        mail_after: timedelta = timedelta(hours=5),
        **options: Unpack[BearerApiOptions],
    ) -> None:
        self.centre_id = centre_id
        self.print_after = print_after
        self.envelope_after = envelope_after
        self.mail_after = mail_after
        self.down = False
        self.jobs: dict[str, Job] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.puts: Counter[str] = Counter()  # job PUTs processed (a repeat of the same bytes included)
        super().__init__(name="printcentre-emulator", **options)  # callback_url: each dispatch id pushed there

    # -- the protocol ----------------------------------------------------------------------------------

    def unavailable(self) -> Answer | None:
        """With ``down`` set, every request is answered 503 (``Retry-After: 60``) before its token is read."""
        return (503, b'{"error": "CENTRE_DOWN"}', (("Retry-After", "60"),)) if self.down else None

    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer | None:
        """The centre's answer to an authorised request, or None for a path it does not have."""
        if method == "PUT" and path.startswith("/jobs/"):
            return self._put_job(unquote(path.removeprefix("/jobs/")), headers, raw)
        if method == "GET" and path.startswith("/jobs/"):
            return self._get_job(unquote(path.removeprefix("/jobs/")))
        if method == "PUT" and path.startswith("/batches/"):
            return self._put_batch(unquote(path.removeprefix("/batches/")), headers, raw)
        return None

    def _put_job(self, dispatch_id: str, h: dict[str, str], pdf: bytes) -> tuple[int, bytes, Any]:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        if h.get("idempotency-key") != dispatch_id:
            return self._reject(f"idempotency-key of {dispatch_id}")
        if h.get("content-type") != "application/pdf":
            return self._reject("content-type")
        sha = hashlib.sha256(pdf).hexdigest()
        if h.get("x-job-sha256") != sha:
            return self._reject(f"sha256 of {dispatch_id}")
        try:
            pages = len(PdfReader(io.BytesIO(pdf)).pages)
        except (PyPdfError, ValueError, KeyError, OSError):
            return self._reject(f"unreadable PDF {dispatch_id}")
        if str(pages) != h.get("x-job-pages"):
            return self._reject(f"page count of {dispatch_id}: {pages} != {h.get('x-job-pages')}")
        batch_id, task_id = h.get("x-batch-id"), h.get("x-task-id")
        if not batch_id or not task_id:
            return self._reject("x-batch-id / x-task-id")
        with self._lock:
            self.puts[dispatch_id] += 1
            known = self.jobs.get(dispatch_id)
            if known is not None:
                if known.sha256 != sha:
                    return 409, b'{"error": "JOB_CONFLICT"}', ()
                return 200, json.dumps({"dispatch_id": dispatch_id, "status": "received"}).encode(), ()
            digest = int.from_bytes(hashlib.sha256(dispatch_id.encode()).digest()[:5], "big")
            self.jobs[dispatch_id] = Job(
                dispatch_id=dispatch_id,
                task_id=task_id,
                batch_id=batch_id,
                sha256=sha,
                pages=pages,
                waybill=h.get("x-waybill") or f"PC{digest % 10**11:011d}",
                received_at=self.now(),
                pdf=pdf,
            )
        if self.callback_url:
            self.push_later(self.push, self.callback_url, dispatch_id)
        return 201, json.dumps({"dispatch_id": dispatch_id, "status": "received"}).encode(), ()

    def _put_batch(self, batch_id: str, h: dict[str, str], raw: bytes) -> tuple[int, bytes, Any]:
        try:
            manifest = json.loads(raw)
        except ValueError:
            return self._reject("manifest is not JSON")
        if not isinstance(manifest, dict) or manifest.get("format") != "delivery-sdk/print-manifest/v1":
            return self._reject("manifest format")
        if manifest.get("batch_id") != batch_id or h.get("idempotency-key") != batch_id:
            return self._reject("manifest batch id")
        if manifest.get("centre_id") != self.centre_id:
            return self._reject("manifest centre")
        jobs = manifest.get("jobs")
        if not isinstance(jobs, list) or manifest.get("count") != len(jobs):
            return self._reject("manifest jobs")
        missing: list[str] = []
        with self._lock:
            self.batches.setdefault(batch_id, manifest)
            now = self.now()
            for entry in jobs:
                job = self.jobs.get(entry.get("dispatch_id"))
                if job is None or job.sha256 != entry.get("sha256") or job.pages != entry.get("pages"):
                    missing.append(str(entry.get("dispatch_id")))
                elif job.batch_at is None:
                    job.batch_at = now
        answer = {"batch_id": batch_id, "received": len(jobs) - len(missing), "missing": missing}
        return 200, json.dumps(answer).encode(), ()

    def events(self, job: Job, now: datetime | None = None) -> list[dict[str, Any]]:
        """The job's acknowledgements visible at ``now``."""
        now = now or self.now()
        if job.batch_at is None:
            return []
        steps = [
            (self.print_after, "printed", {}),
            (self.envelope_after, "enveloped", {}),
            (self.mail_after, "mailed", {"waybill": job.waybill}),
        ]
        out = []
        for after, kind, extra in steps:
            at = job.batch_at + after
            if at <= now:
                out.append({"event_id": f"{job.dispatch_id}-{kind}", "type": kind, "at": at.isoformat(), **extra})
        return out

    def _get_job(self, dispatch_id: str) -> tuple[int, bytes, Any]:
        with self._lock:
            job = self.jobs.get(dispatch_id)
        if job is None:
            return 404, b'{"error": "NOT_FOUND"}', ()
        body = {
            "dispatch_id": dispatch_id,
            "batch_id": job.batch_id,
            "sha256": job.sha256,
            "pages": job.pages,
            "events": self.events(job),
        }
        return 200, json.dumps(body).encode(), ()

    # -- pushes ----------------------------------------------------------------------------------------

    def push_request(self, dispatch_id: str, *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """The signed push of a job's visible acknowledgements: ``(headers, body)``."""
        with self._lock:
            job = self.jobs[dispatch_id]
            self._nonce += 1
            nonce = f"pc-{self._nonce}"
        body = json.dumps(
            {"centre_id": self.centre_id, "dispatch_id": dispatch_id, "events": self.events(job)}
        ).encode()
        stamp = int(self.now().timestamp()) if timestamp is None else timestamp
        headers = sign_callback(self.callback_secret, body, timestamp=stamp, nonce=nonce)
        return {"Content-Type": "application/json", **headers}, body

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_PRINTCENTRE_*`` variables for ``delivery-sdk sandbox``: with a ``state_dir``, a
        centres file there naming this centre (Wuhan's route key, open every day, a batch per package), a
        spool folder and a ``documents`` folder (put the documents to print there as ``<sha256>.pdf``)."""
        if self.state_dir is None:
            return {}
        folder = self.state_dir.resolve()
        (folder / "spool").mkdir(parents=True, exist_ok=True)
        (folder / "documents").mkdir(exist_ok=True)
        centres = folder / "centres.toml"
        if not centres.exists():
            centres.write_text(
                "# written by the sandbox: one print centre, this emulator\n"
                "[[centre]]\n"
                f'id = "{self.centre_id}"\n'
                'name = "sandbox print centre"\n'
                'route_keys = ["420100"]\n'
                'hours = "00:00-23:59"\n'
                'days = "all"\n'
                'cutoffs = ["12:00"]\n'
                "batch_size = 1\n"
                f'endpoint = "{self.url}"\n',
                encoding="utf-8",
            )
        return {
            "DELIVERY_SDK_PRINTCENTRE_CENTRES": str(centres),
            "DELIVERY_SDK_PRINTCENTRE_TOKEN": self.token,
            "DELIVERY_SDK_PRINTCENTRE_CALLBACK_SECRET": self.callback_secret,
            "DELIVERY_SDK_PRINTCENTRE_SPOOL": str(folder / "spool"),
            "DELIVERY_SDK_PRINTCENTRE_DOCUMENTS": str(folder / "documents"),
        }


def sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: str | Path | None = None,
    callback_url: str | None = None,
    time_scale: float = 1.0,
) -> CentreEmulator:
    """The emulator as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): what it
    takes is pushed to ``{callback_url}/{centre_id}`` (signed; the adapter's name is the centre's id) as soon
    as it is created; a job is printed 2, enveloped 3 and mailed 5 hours after its batch, ``time_scale``
    times sooner (``--time-scale``)."""
    centre_id = "PC-420100"
    return CentreEmulator(
        centre_id=centre_id,
        host=host,
        port=port,
        state_dir=state_dir,
        callback_url=join_callback(callback_url, centre_id),
        print_after=timedelta(hours=2) / time_scale,
        envelope_after=timedelta(hours=3) / time_scale,
        mail_after=timedelta(hours=5) / time_scale,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_printcentre.emulator [--port N] [--state DIR] [--callback-url URL]``."""
    serve_sandbox_main(sandbox, argv, prog="python -m delivery_sdk_printcentre.emulator")


if __name__ == "__main__":
    main()
