"""Catch secrets and personal data in log records: every logger at DEBUG, every record checked.

:class:`LogLeakCheck` is a context manager: inside it, the root logger and every logger that exists (or is
created meanwhile, through the root) is at DEBUG and every record is kept; :meth:`LogLeakCheck.leaks` lists
what should never be in a log:

- any of the ``secrets`` given (API keys, HMAC secrets, passwords, access tokens...), verbatim;
- a mobile number (11 digits, ``1[3-9]...``), however it is spelt: with ``+86``/``0086``, spaces, dashes or
  dots between the digits, full-width digits;
- a resident ID number (18 characters: 17 digits and a digit or X);
- an address: any of the ``addresses`` given, or a fragment of one (a road or street name), or anything
  shaped like a Chinese street address (``...路12号``).

The text checked is each record's message formatted with its arguments, plus its ``exc_text`` and the
formatted exception and stack when the record carries them. Levels and handlers are restored on exit.
"""

from __future__ import annotations

import logging
import re
import traceback
import unicodedata
from collections.abc import Iterable
from types import TracebackType

__all__ = ["LogLeakCheck", "find_personal_data"]

_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:(?:\+|00)?86[\s.-]?)?1[3-9](?:[\s.-]?[0-9]){9}(?![0-9A-Za-z])")
_RESIDENT_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
    r"(?![0-9A-Za-z])"
)
_STREET_ADDRESS = re.compile(r"[\u4e00-\u9fff]{2,}(?:路|街|大道|巷|胡同|弄)[0-9０-９一二三四五六七八九十]+号")


def _fragments(address: str) -> list[str]:
    """The parts of an address worth looking for on their own: the whole, and each road or street name."""
    parts = [address]
    parts += re.findall(r"(?=([\u4e00-\u9fff]{2}(?:路|街|大道|巷)))", address)  # "中北路": the road's name
    return [p for p in parts if len(p) >= 3]


def find_personal_data(text: str, *, secrets: Iterable[str] = (), addresses: Iterable[str] = ()) -> list[str]:
    """What in ``text`` is a secret, a mobile number, an ID number or an address (see the module docstring)."""
    found: list[str] = []
    normal = unicodedata.normalize("NFKC", text)
    for secret in secrets:
        if secret and (secret in text or secret in normal):
            found.append(f"secret {secret[:3]}...")
    found += [f"mobile number {m[:3]}..." for m in _MOBILE.findall(normal)]
    found += [f"ID number {m[:6]}..." for m in _RESIDENT_ID.findall(normal)]
    for address in addresses:
        found += [f"address {fragment}" for fragment in _fragments(address) if fragment in normal]
    found += [f"address {m}" for m in _STREET_ADDRESS.findall(normal)]
    return found


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _text(record: logging.LogRecord) -> str:
    try:
        parts = [record.getMessage()]
    except Exception as exc:  # arguments that do not format: look at them raw
        parts = [str(record.msg), repr(record.args), type(exc).__name__]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


class LogLeakCheck:
    """Every logger at DEBUG, every record kept, while the ``with`` block runs (see the module docstring)."""

    def __init__(self, *, secrets: Iterable[str] = (), addresses: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]
        self.addresses = [a for a in addresses if a]
        self._handler = _Keep()
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    @property
    def records(self) -> list[logging.LogRecord]:
        """The log records captured so far."""
        return self._handler.records

    def __enter__(self) -> LogLeakCheck:
        root = logging.getLogger()
        self._saved.append((root, root.level, root.propagate))
        root.setLevel(logging.DEBUG)
        root.addHandler(self._handler)
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger):
                self._saved.append((logger, logger.level, logger.propagate))
                logger.setLevel(logging.DEBUG)
                logger.disabled = False
                if not logger.propagate:  # its records never reach the root: listen to it directly
                    logger.addHandler(self._handler)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for logger, level, _propagate in self._saved:
            logger.setLevel(level)
            logger.removeHandler(self._handler)
        self._saved.clear()

    def leaks(self) -> list[str]:
        """Each leak as ``"<logger>: <what>"`` (never the value itself, beyond a short prefix)."""
        out: list[str] = []
        for record in self.records:
            for what in find_personal_data(_text(record), secrets=self.secrets, addresses=self.addresses):
                out.append(f"{record.name}: {what} in {record.msg!s:.80}")
        return out
