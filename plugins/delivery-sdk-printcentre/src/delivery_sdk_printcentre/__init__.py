"""Regional print/mail centres reached over HTTP, as a delivery-sdk plugin.

:class:`HttpPrintCentre` is a channel adapter of kind :attr:`~delivery_sdk.ChannelKind.PRINT`, one per centre
(the centres TOML's ``endpoint``), registered through ``delivery_register_print_centres`` with the centre's
:class:`~delivery_sdk.PrintCentreInfo`:

- ``send`` fetches the job's documents (a :class:`~delivery_sdk.printing.package.DocumentSource`), checks each
  against its SHA-256 digest, renders the print package (送达回证 + address block + the documents) and adds it
  to the centre's durable spool (:class:`~delivery_sdk.printing.batch.BatchSpool`). A job is accepted once it
  is spooled; the spool is the hand-over, so a crash loses nothing and a job is never rendered twice;
- due batches (the centre's cut-offs, or its batch size while it is open) are released lazily from ``send``
  and ``status``, or by :meth:`HttpPrintCentre.flush`, and pushed: each job with ``PUT /jobs/{dispatch_id}``
  (the dispatch id is the idempotency key), then the batch manifest with ``PUT /batches/{batch_id}``;
- the centre acknowledges *printed*, *enveloped* and *mailed* (with the waybill the job carried) by signed
  push callbacks and answers ``GET /jobs/{dispatch_id}`` (polling): both become receipts.

Wire protocol (every request carries ``Authorization: Bearer <token>``)::

    PUT {endpoint}/jobs/{dispatch_id}                 the print package, Content-Type: application/pdf
      Idempotency-Key: <dispatch id>   X-Batch-Id: <batch id>   X-Task-Id: <task id>
      X-Job-Sha256: <hex SHA-256 of the PDF>   X-Job-Pages: <page count>   X-Waybill: <waybill> (if ordered)
      201 {"dispatch_id": ..., "status": "received"}    200 the same for a repeat with the same bytes
      409 {"error": "JOB_CONFLICT"} (other bytes under that id)   4xx {"error": "<CODE>"}: refused for good
    PUT {endpoint}/batches/{batch_id}                 the manifest (delivery-sdk/print-manifest/v1), JSON
      200 {"batch_id": ..., "received": <jobs it holds>, "missing": [<dispatch ids it lacks>]}
    GET {endpoint}/jobs/{dispatch_id}
      200 {"dispatch_id": ..., "batch_id": ..., "sha256": ..., "events": [EVENT, ...]}   | 404

    EVENT = {"event_id": "e-1", "type": "printed" | "enveloped" | "mailed", "at": "<ISO 8601 with offset>",
             "waybill": "<the waybill>" (mailed only)}

    callback: POST <the court's receiver>/{centre_id}, body {"centre_id": ..., "dispatch_id": ..., "events": [...]}
      signed with delivery-sdk's generic scheme (X-Delivery-Timestamp / -Nonce / -Signature,
      HMAC-SHA256 over timestamp + "\\n" + nonce + "\\n" + body; see delivery_sdk.callbacks)

Failures (through :mod:`delivery_sdk.httpchannel`): a push that times out or meets a 5xx, a 429 or a broken
connection stays where it is and is retried on the next ``send``/``status``/``flush``; before a job is pushed
again the centre is asked whether it has it (``GET``), so the centre sees each job once. A centre whose
requests have failed for ``down_after`` counts as down: ``send`` refuses new jobs (the engine routes them to
the neighbour) and ``status`` reports jobs that never reached it as failed, so they are routed elsewhere too;
a job whose push is in doubt (a timeout) is never given up that way. A job the centre refuses for good
(a 4xx) is reported failed. A job whose documents are not the ones requested (missing, unreadable, or a
digest mismatch) raises :class:`~delivery_sdk.UnsendableDispatch`: the dispatch fails and a person is asked,
without failing over (every centre would print the same wrong bytes). Nothing personal is logged.

The entry point (``printcentre = "delivery_sdk_printcentre:plugin"``) is :data:`plugin`, an
:class:`EnvPrintCentrePlugin` configured from ``DELIVERY_SDK_PRINTCENTRE_CENTRES`` and friends (nothing while none
of them is set; a partial configuration raises :class:`~delivery_sdk.PluginError` naming every missing variable).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    Dispatch,
    MalformedReceipt,
    PrintCentreRegistry,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    TransientChannelError,
    UnsendableDispatch,
    hookimpl,
)
from delivery_sdk.callbacks import require_secret, verify_signed_callback
from delivery_sdk.clock import Clock, SystemClock
from delivery_sdk.plugin_kit import (
    LoopClient,
    PluginSettings,
    RateLimiter,
    aware_datetime,
    check_base_url,
    check_response,
    json_answer,
    make_client,
    read_json_object,
    translate_errors,
)
from delivery_sdk.printing.batch import BatchSpool, Manifest
from delivery_sdk.printing.centres import CentreConfig, Centres, load_centres
from delivery_sdk.printing.package import (
    DocumentSource,
    FolderDocumentSource,
    PackageRenderer,
    PackageRequest,
    PrintPackageError,
)

__all__ = [
    "ENV_CALLBACK_SECRET",
    "ENV_CENTRES",
    "ENV_DOCUMENTS",
    "ENV_DOWN_AFTER",
    "ENV_RATE",
    "ENV_SPOOL",
    "ENV_TOKEN",
    "EVENT_KINDS",
    "EnvPrintCentrePlugin",
    "HttpPrintCentre",
    "events_to_receipts",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_printcentre")

ENV_CENTRES = "DELIVERY_SDK_PRINTCENTRE_CENTRES"
ENV_TOKEN = "DELIVERY_SDK_PRINTCENTRE_TOKEN"
ENV_CALLBACK_SECRET = "DELIVERY_SDK_PRINTCENTRE_CALLBACK_SECRET"
ENV_SPOOL = "DELIVERY_SDK_PRINTCENTRE_SPOOL"
ENV_DOCUMENTS = "DELIVERY_SDK_PRINTCENTRE_DOCUMENTS"
ENV_RATE = "DELIVERY_SDK_PRINTCENTRE_RATE"
ENV_DOWN_AFTER = "DELIVERY_SDK_PRINTCENTRE_DOWN_AFTER"

# The centre's acknowledgements, as receipt kinds.
EVENT_KINDS: Mapping[str, ReceiptKind] = {
    "printed": ReceiptKind.PRINTED,
    "enveloped": ReceiptKind.ENVELOPED,
    "mailed": ReceiptKind.MAILED,  # handed to the carrier
}
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_ERROR_CODE = re.compile(r"[A-Z0-9_]{1,40}")
_MAX_BODY = 1 << 20
_TRANSIENT_4XX = frozenset({408, 425, 429})


def _when(value: Any) -> datetime:
    return aware_datetime(value, "centre event 'at'")


def events_to_receipts(dispatch_id: str, events: Any) -> list[Receipt]:
    """The receipts a centre's event list gives; unknown event types are skipped; MalformedReceipt if unreadable."""
    if not isinstance(events, list):
        raise MalformedReceipt("centre 'events' must be a JSON array")
    out: list[Receipt] = []
    for item in events:
        if not isinstance(item, dict):
            raise MalformedReceipt("a centre event must be a JSON object")
        event_id = item.get("event_id")
        if not isinstance(event_id, str) or not _CODE.fullmatch(event_id):
            raise MalformedReceipt("a centre event needs an 'event_id' of 1-200 letters, digits or _.:-")
        event_type = item.get("type")
        kind = EVENT_KINDS.get(event_type) if isinstance(event_type, str) else None  # a list is no type
        if kind is None:
            continue  # progress without legal effect (queued, reprinted...)
        waybill = item.get("waybill") if kind is ReceiptKind.MAILED else None
        if kind is ReceiptKind.MAILED and (not isinstance(waybill, str) or not _CODE.fullmatch(waybill)):
            raise MalformedReceipt("a 'mailed' centre event needs the 'waybill'")
        out.append(
            Receipt(
                dispatch_id=dispatch_id,
                kind=kind,
                at=_when(item.get("at")),
                provider_event_id=event_id,
                waybill=waybill,
            )
        )
    return out


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    return json_answer(response, what, party="the centre")


def _error_code(response: httpx.Response) -> str:
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "no error code"


class _JobStates:
    """What this adapter knows of each job's push, durably: ``sent`` (the centre has it), ``doubt`` (a push
    timed out: it may have it) or ``failed`` (never reached it, or refused for good; with the reason).

    One small JSON file per job under ``<spool>/<centre>/http/jobs/``, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, dispatch_id: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.folder / f"{dispatch_id}.json").read_bytes())
        except FileNotFoundError:
            return None
        return data

    def put(self, dispatch_id: str, **state: Any) -> None:
        target = self.folder / f"{dispatch_id}.json"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(json.dumps(state, ensure_ascii=False).encode())
        os.replace(tmp, target)


class HttpPrintCentre(BaseChannel):
    """One print/mail centre over HTTP (see the module docstring for the protocol and the failure rules).

    - ``config``: the centre (its id is the adapter's name; ``endpoint`` its base URL unless ``endpoint`` is
      given here); ``spool``: the durable batch spool (shared by every centre; one folder per centre);
    - ``renderer``: renders the print packages (its ``source`` supplies the documents' bytes);
    - ``token``: the bearer token (never in a ``repr``); ``callback_secret``: the key of the centre's signed
      pushes (without one every push is refused as unsigned); ``callback_window``: their clock tolerance;
    - ``clock``: the engine's clock (arrival times, cut-offs); ``down_after``: how long requests must keep
      failing before the centre counts as down;
    - ``transport``: an ``httpx.AsyncBaseTransport`` (tests); ``timeout``: seconds per request;
      ``rate``/``burst``: the centre's request rate limit (None: unlimited).
    """

    kind = ChannelKind.PRINT

    def __init__(
        self,
        config: CentreConfig,
        *,
        spool: BatchSpool,
        renderer: PackageRenderer,
        token: str,
        callback_secret: str | bytes | None = None,
        callback_window: timedelta = timedelta(minutes=5),
        clock: Clock | None = None,
        endpoint: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        rate: float | None = None,
        burst: int = 1,
        down_after: timedelta = timedelta(minutes=30),
    ) -> None:
        base = endpoint or config.endpoint
        if not base:
            raise ValueError(f"print centre {config.centre_id!r} has no endpoint: set 'endpoint' in its [[centre]]")
        base = check_base_url(base, what=f"print centre {config.centre_id!r}: the endpoint")
        if not token:
            raise ValueError(f"print centre {config.centre_id!r} needs a token ({ENV_TOKEN})")
        if callback_secret is not None:  # None: pushes are refused as unsigned; empty: a mistake
            require_secret(
                callback_secret, f"print centre {config.centre_id!r}: callback_secret ({ENV_CALLBACK_SECRET})"
            )
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if down_after < timedelta(0):
            raise ValueError("down_after must not be negative")
        self.config = config
        self.name = config.centre_id
        self.base_url = base.rstrip("/")
        self.spool = spool
        self.renderer = renderer
        self.clock: Clock = clock or SystemClock()
        self.callback_window = callback_window
        self.transport = transport
        self.timeout = timeout
        self.down_after = down_after
        self.limiter = RateLimiter(rate, burst=burst)
        self.states = _JobStates(spool.root / self.name / "http" / "jobs")
        self._pushed_dir = spool.root / self.name / "http" / "pushed"
        self._labels_dir = spool.root / self.name / "http" / "labels"
        self._pushed_dir.mkdir(parents=True, exist_ok=True)
        self._labels_dir.mkdir(parents=True, exist_ok=True)
        self._token = token
        self._secret = callback_secret
        self._lock: asyncio.Lock | None = None
        self._client = LoopClient(self._make_client, on_new=self._new_lock)
        self.failing_since: datetime | None = None  # first failed request since the last success
        self.last_error = ""
        self.last_status: int | None = None  # of the latest request (None: no answer)

    def __repr__(self) -> str:
        return f"HttpPrintCentre({self.name!r}, {self.base_url!r})"

    # -- HTTP ------------------------------------------------------------------------------------------

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        return make_client(self.base_url, headers=headers, transport=self.transport, timeout=self.timeout)

    def _new_lock(self) -> None:
        self._lock = asyncio.Lock()

    def _http(self) -> httpx.AsyncClient:
        return self._client.get()

    def _flush_lock(self) -> asyncio.Lock:
        self._http()
        assert self._lock is not None
        return self._lock

    async def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """The answer (2xx, 404, or a permanent 4xx); transient failures raise and mark the centre failing."""
        await self.limiter.acquire()
        self.last_status = None
        try:
            async with translate_errors(what):
                response = await self._http().request(method, path, **kwargs)
            self.last_status = response.status_code
            if response.status_code >= 500 or response.status_code in _TRANSIENT_4XX:
                check_response(response, what=what)  # raises TransientChannelError (Retry-After kept)
        except TransientChannelError as exc:
            if self.last_status != 429:  # a rate limit says the centre is up
                self._failing(str(exc))
            raise
        self.failing_since = None
        return response

    def _not_received(self, exc: TransientChannelError) -> bool:
        """Whether a failed request certainly did not reach the centre (refused connection, 503, 429)."""
        return self.last_status in (429, 503) or isinstance(exc.__cause__, httpx.ConnectError)

    def _failing(self, error: str) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock.now()
        self.last_error = error

    def down(self) -> bool:
        """Whether the centre's requests have failed for ``down_after`` without a success in between."""
        return self.failing_since is not None and self.clock.now() - self.failing_since >= self.down_after

    async def aclose(self) -> None:
        """Close the adapter's HTTP client (when it made its own)."""
        await self._client.aclose()

    def _job_path(self, dispatch_id: str) -> str:
        return f"/jobs/{quote(dispatch_id, safe='')}"

    # -- sending ---------------------------------------------------------------------------------------

    def _request_of(self, dispatch: Dispatch) -> PackageRequest:
        return PackageRequest(
            task_id=dispatch.task_id,
            dispatch_id=dispatch.dispatch_id,
            case=dispatch.case,
            recipient=dispatch.recipient_name,
            address=dispatch.contact,
            documents=tuple(dispatch.documents),
        )

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Render the job's print package and spool it for the centre's next batch (idempotent on the
        dispatch id); refused while the centre is down; UnsendableDispatch if the documents are wrong."""
        ref = f"{self.name}/{dispatch.dispatch_id}"
        if self.spool.where(dispatch.dispatch_id, self.name) is None:
            if self.down():
                probe = await self._probe(dispatch.dispatch_id)
                if probe is None:
                    return SendResult(
                        accepted=False,
                        reason=f"print centre {self.name} is down ({self.last_error}); the job was not taken",
                    )
                if probe:  # the centre already has it (a spool lost with its disk): nothing to push
                    self.states.put(dispatch.dispatch_id, state="sent")
                    return SendResult(accepted=True, provider_ref=ref)
            try:
                package = self.renderer.render(self._request_of(dispatch))
            except PrintPackageError as exc:
                raise UnsendableDispatch(f"print job {dispatch.dispatch_id}: {exc}") from None
            if dispatch.waybill is not None:
                label = self._labels_dir / f"{dispatch.dispatch_id}.json"
                label.write_text(json.dumps({"waybill": dispatch.waybill}), encoding="utf-8")
            if self.spool.add(self.name, package, self.clock.now()):
                log.info("%s: print job %s spooled (%d pages)", self.name, dispatch.dispatch_id, package.pages)
        await self._flush_quietly()
        return SendResult(accepted=True, provider_ref=ref)

    async def _probe(self, dispatch_id: str) -> bool | None:
        """Ask the centre for a job: True (it has it), False (it does not, and answers), None (no answer)."""
        try:
            response = await self._request("GET", self._job_path(dispatch_id), f"{self.name}.probe")
        except ChannelError:
            return None
        return response.status_code == 200

    # -- batches ---------------------------------------------------------------------------------------

    async def flush(self) -> list[Manifest]:
        """Push every released batch the centre has not taken yet, then release and push the due ones.

        Returns the manifests pushed. A transient failure raises :class:`~delivery_sdk.TransientChannelError`
        and leaves the rest for the next call.
        """
        pushed: list[Manifest] = []
        async with self._flush_lock():
            for manifest in self.spool.released(self.name):
                if not (self._pushed_dir / manifest.batch_id).exists():
                    await self._push(manifest, fresh=False)
                    pushed.append(manifest)
            now = self.clock.now()
            while (reason := self.spool.due(self.config, now)) is not None:
                manifest_or_none = self.spool.release(self.config, now, reason)
                if manifest_or_none is None:
                    break
                log.info("%s: batch %s released (%s)", self.name, manifest_or_none.batch_id, reason)
                await self._push(manifest_or_none, fresh=True)
                pushed.append(manifest_or_none)
        return pushed

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except ChannelError as exc:
            log.warning("%s: batch push deferred: %s", self.name, exc)

    async def _push(self, manifest: Manifest, *, fresh: bool) -> None:
        for job in manifest.jobs:
            state = self.states.get(job.dispatch_id)
            if state is not None and state.get("state") in ("sent", "failed"):
                continue
            if not fresh or state is not None:
                # in doubt, or pushed by an earlier run: ask first, so the centre sees each job once
                what = f"{self.name}.job_status"
                response = await self._request("GET", self._job_path(job.dispatch_id), what)
                if response.status_code == 200 and _json(response, what).get("sha256") == job.sha256:
                    self.states.put(job.dispatch_id, state="sent")
                    continue
            await self._put_job(manifest, job.dispatch_id, job.task_id, job.sha256, job.pages)
        what = f"{self.name}.batch"
        response = await self._request(
            "PUT",
            f"/batches/{quote(manifest.batch_id, safe='')}",
            what,
            content=manifest.to_json(),
            headers={"Content-Type": "application/json", "Idempotency-Key": manifest.batch_id},
        )
        if response.status_code >= 400:
            log.error(
                "%s: the centre refused the manifest of batch %s with HTTP %d (%s); its jobs stand",
                self.name,
                manifest.batch_id,
                response.status_code,
                _error_code(response),
            )
        else:
            missing = _json(response, what).get("missing") or []
            if missing:
                log.warning("%s: batch %s: the centre lacks %d job(s)", self.name, manifest.batch_id, len(missing))
        (self._pushed_dir / manifest.batch_id).write_bytes(b"")

    async def _put_job(self, manifest: Manifest, dispatch_id: str, task_id: str, sha256: str, pages: int) -> None:
        pdf = self.spool.package_path(self.name, manifest.batch_id, dispatch_id).read_bytes()
        headers = {
            "Content-Type": "application/pdf",
            "Idempotency-Key": dispatch_id,
            "X-Batch-Id": manifest.batch_id,
            "X-Task-Id": task_id,
            "X-Job-Sha256": sha256,
            "X-Job-Pages": str(pages),
        }
        label = self._labels_dir / f"{dispatch_id}.json"
        if label.exists():
            headers["X-Waybill"] = json.loads(label.read_text(encoding="utf-8"))["waybill"]
        what = f"{self.name}.job"
        try:
            response = await self._request("PUT", self._job_path(dispatch_id), what, content=pdf, headers=headers)
        except TransientChannelError as exc:
            if not self._not_received(exc):  # the centre may have it: never given up, asked before a re-push
                self.states.put(dispatch_id, state="doubt", at=self.clock.now().isoformat())
            raise
        if response.status_code >= 400:
            reason = (
                f"print centre {self.name} refused the job with HTTP {response.status_code} ({_error_code(response)})"
            )
            log.error("%s: %s", dispatch_id, reason)
            self.states.put(dispatch_id, state="failed", reason=reason, at=self.clock.now().isoformat())
            return
        self.states.put(dispatch_id, state="sent")

    # -- tracking --------------------------------------------------------------------------------------

    def _failed(self, dispatch_id: str, state: dict[str, Any]) -> StatusReport:
        at = datetime.fromisoformat(state["at"]) if state.get("at") else self.clock.now()
        receipt = Receipt(
            dispatch_id=dispatch_id,
            kind=ReceiptKind.FAILED,
            at=at,
            reason=str(state.get("reason") or "the print centre did not take the job"),
            provider_event_id=f"{dispatch_id}-not-taken",
        )
        return StatusReport(found=True, receipts=(receipt,))

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """Where the job stands: spooled or on its way (found, no news), at the centre (its acknowledgements
        as receipts), or failed (never reached a centre that stayed down, or refused for good)."""
        await self._flush_quietly()
        did = dispatch.dispatch_id
        where = self.spool.where(did, self.name)
        state = self.states.get(did) or {}
        if state.get("state") == "failed":
            return self._failed(did, state)
        if where == "pending":
            return StatusReport(found=True, provider_ref=f"{self.name}/{did}")
        if where is not None and state.get("state") != "sent":
            if self.down() and state.get("state") != "doubt":
                since = self.failing_since.isoformat() if self.failing_since else "?"
                failed = {
                    "state": "failed",
                    "reason": f"print centre {self.name} unreachable since {since} ({self.last_error}); "
                    "the job never reached it",
                    "at": self.clock.now().isoformat(),
                }
                self.states.put(did, **failed)  # never pushed from now on: it is routed elsewhere
                log.warning("%s: job %s given up: the centre is down", self.name, did)
                return self._failed(did, failed)
            return StatusReport(found=True, provider_ref=f"{self.name}/{did}")
        what = f"{self.name}.status"
        response = await self._request("GET", self._job_path(did), what)
        if response.status_code == 404:
            if where is not None:
                log.warning("%s: the centre does not know job %s it took", self.name, did)
                return StatusReport(found=True, provider_ref=f"{self.name}/{did}")
            return StatusReport(found=False)
        if response.status_code >= 400:
            raise ChannelError(f"{what}: the centre refused the status request with HTTP {response.status_code}")
        try:
            receipts = events_to_receipts(did, _json(response, what).get("events"))
        except MalformedReceipt as exc:
            raise ChannelError(f"{what}: {exc}") from None
        return StatusReport(found=True, provider_ref=f"{self.name}/{did}", receipts=tuple(receipts))

    # -- callbacks -------------------------------------------------------------------------------------

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """Check a push's signature (delivery-sdk's generic scheme) and timestamp; the replay key is its nonce."""
        if not self._secret:
            raise CallbackRejected("unsigned", f"print centre {self.name!r} has no callback secret configured")
        nonce = verify_signed_callback(self._secret, headers, body, now, self.callback_window)
        return f"{self.name}:{nonce}"

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        """The receipts in a push (call :meth:`verify_callback` first); the push must name this centre."""
        payload = read_json_object(body, what="centre push", max_bytes=_MAX_BODY)
        if payload.get("centre_id") != self.name:
            raise MalformedReceipt(f"centre push does not name centre {self.name}")
        dispatch_id = payload.get("dispatch_id")
        if not isinstance(dispatch_id, str) or not _CODE.fullmatch(dispatch_id):
            raise MalformedReceipt("centre push needs the 'dispatch_id'")
        return events_to_receipts(dispatch_id, payload.get("events"))


ENV_PREFIX = "DELIVERY_SDK_PRINTCENTRE_"


class EnvPrintCentrePlugin:
    """The entry-point plugin: registers one :class:`HttpPrintCentre` per centre with an ``endpoint``.

    ``DELIVERY_SDK_PRINTCENTRE_CENTRES``: the centres TOML (centres without an ``endpoint`` are left to other
    plugins); ``DELIVERY_SDK_PRINTCENTRE_TOKEN`` (required); ``DELIVERY_SDK_PRINTCENTRE_SPOOL`` (the spool
    folder, required); ``DELIVERY_SDK_PRINTCENTRE_DOCUMENTS`` (documents by digest, ``<folder>/<sha256>.pdf``,
    required unless ``source`` is given); ``DELIVERY_SDK_PRINTCENTRE_CALLBACK_SECRET``;
    ``DELIVERY_SDK_PRINTCENTRE_RATE`` (requests per second per centre); ``DELIVERY_SDK_PRINTCENTRE_DOWN_AFTER``
    (seconds, default 1800). ``source`` replaces the document folder (say, the case system's file store).

    None of the variables set: nothing is registered (installed, not configured). Any set: a configuration
    that cannot work raises one :class:`~delivery_sdk.PluginError` naming every missing or invalid variable
    when the host loads (never a bare ``ValueError`` at the first routing). The variables are read from the
    host's ``environ`` (``environ`` given here wins, for tests).
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, source: DocumentSource | None = None) -> None:
        self._environ = environ
        self._source = source
        self.adapters: dict[str, HttpPrintCentre] = {}
        self._key: tuple[tuple[str, str], ...] | None = None

    def __repr__(self) -> str:
        return "EnvPrintCentrePlugin()"

    def configured(self, clock: Clock | None = None, environ: Mapping[str, str] | None = None) -> list[HttpPrintCentre]:
        """The print centres the variables describe (none when the plugin is not configured)."""
        s = PluginSettings("print centre", self._environ if self._environ is not None else environ, ENV_PREFIX)
        if not s.configured:
            return []
        path = s.require(ENV_CENTRES, "the centres TOML file")
        centres: Centres | None = None
        if path:
            try:
                centres = load_centres(path)
            except (ValueError, OSError) as exc:
                s.guard(ENV_CENTRES, exc)
        token = s.secret(ENV_TOKEN, required=True)
        spool_dir = s.require(ENV_SPOOL, "the print spool folder")
        source = self._source
        folder = None if source is not None else s.require(ENV_DOCUMENTS, "the folder of documents by digest")
        callback_secret = s.secret(ENV_CALLBACK_SECRET)
        rate = s.number(ENV_RATE, None, positive=True)
        down_after = s.number(ENV_DOWN_AFTER, 1800.0, minimum=0)
        s.check()
        assert centres is not None
        if source is None:
            source = FolderDocumentSource(folder or "")
        try:
            spool = BatchSpool(spool_dir)
            renderer = PackageRenderer(source)
            return [
                HttpPrintCentre(
                    config,
                    spool=spool,
                    renderer=renderer,
                    token=(token or "").strip(),
                    callback_secret=callback_secret,
                    clock=clock,
                    rate=rate,
                    down_after=timedelta(seconds=down_after if down_after is not None else 1800.0),
                )
                for config in centres
                if config.endpoint
            ]
        except (ValueError, OSError) as exc:  # a centre's endpoint, the spool folder...
            s.guard(f"the print centres ({ENV_CENTRES} and friends) are not usable", exc)
            s.check()
            raise

    @hookimpl
    def delivery_register_print_centres(
        self, register: PrintCentreRegistry, clock: Clock, environ: Mapping[str, str]
    ) -> None:
        """Register the configured print centres (the ``delivery_register_print_centres`` hook)."""
        env = self._environ if self._environ is not None else environ
        key = tuple(sorted((k, v) for k, v in env.items() if k.startswith(ENV_PREFIX)))
        if not self.adapters or key != self._key:  # one set of adapters per configuration (the spool is shared)
            self.adapters = {a.name: a for a in self.configured(clock, env)}
            self._key = key
            if not self.adapters:
                log.debug("print-centre plugin installed but not configured (no %s* variable)", ENV_PREFIX)
        for adapter in self.adapters.values():
            register(adapter.config.info(), adapter)


plugin = EnvPrintCentrePlugin()
"""The object the ``printcentre`` entry point registers with every plugin host."""
