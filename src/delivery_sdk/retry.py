"""Retries of transient channel failures, configured once (tenacity).

Every adapter call the engine makes goes through :func:`call_with_retries`: it retries
:class:`~delivery_sdk.TransientChannelError` with exponential backoff and jitter, honouring a provider's
``Retry-After`` when it is longer. :func:`set_testing` turns backoff off (and caps attempts) for tests; it
also works as a context manager. Instrumentation goes through the :class:`RetryObserver` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol, TypeVar

import attrs
import tenacity

from ._exceptions import TransientChannelError

__all__ = ["RetryConfig", "RetryObserver", "backoff", "call_with_retries", "retry_after", "set_testing"]

T = TypeVar("T")
log = logging.getLogger("delivery_sdk.retry")


@attrs.frozen(kw_only=True)
class RetryConfig:
    """How calls to providers are retried: attempts, first and longest wait (seconds), and the jitter."""

    attempts: int = 4
    initial: float = 0.2
    maximum: float = 10.0
    jitter: float = 0.2


class RetryObserver(Protocol):
    """Told of each retry (for logs and metrics)."""

    def on_retry(self, name: str, attempt: int, error: BaseException, wait: float) -> None:
        """Called before waiting ``wait`` seconds to retry call ``name`` after ``attempt`` failed with ``error``."""


_testing: RetryConfig | None = None


@contextlib.contextmanager
def _restore(previous: RetryConfig | None) -> Iterator[None]:
    try:
        yield
    finally:
        global _testing
        _testing = previous


def set_testing(enabled: bool = True, *, attempts: int = 1) -> contextlib.AbstractContextManager[None]:
    """Turn backoff off and cap attempts (``attempts=1``: no retries) for tests.

    Call it plainly to switch for the rest of the process, or use it as a context manager to switch back.
    """
    global _testing
    previous = _testing
    _testing = RetryConfig(attempts=attempts, initial=0.0, maximum=0.0, jitter=0.0) if enabled else None
    return _restore(previous)


def backoff(config: RetryConfig, retry: int, error: BaseException | None = None) -> float:
    """The wait before retry number ``retry`` (1: before the second attempt): ``initial`` doubled per retry
    up to ``maximum``, plus a uniform jitter in ``[0, jitter)`` on every retry (concurrent calls that failed
    together do not retry in lock-step), and at least the provider's ``Retry-After`` (up to ``maximum``)."""
    if config.maximum <= 0:
        return 0.0
    wait = min(config.initial * (1 << max(0, retry - 1)), config.maximum) + random.uniform(0.0, config.jitter)
    if isinstance(error, TransientChannelError) and error.retry_after is not None:
        wait = max(wait, min(error.retry_after, config.maximum))
    return wait


class _Wait(tenacity.wait.wait_base):
    """tenacity's wait after its attempt ``n`` failed: that is the call's retry ``n + 1`` (the call's first
    attempt ran before tenacity, see :func:`retry_after`)."""

    def __init__(self, config: RetryConfig) -> None:
        self._config = config

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        return backoff(self._config, retry_state.attempt_number + 1, error)


async def call_with_retries(
    name: str,
    fn: Callable[[], Awaitable[T]],
    *,
    config: RetryConfig | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    observer: RetryObserver | None = None,
) -> T:
    """Await ``fn()``, retrying :class:`TransientChannelError`; the last error propagates."""
    # The first attempt runs without tenacity: nearly every call succeeds, and building a retrying state
    # per call costs more than the call itself against a fast provider.
    try:
        return await fn()
    except TransientChannelError as error:
        return await retry_after(name, fn, error, config=config, sleep=sleep, observer=observer)


async def retry_after(
    name: str,
    fn: Callable[[], Awaitable[T]],
    first_error: TransientChannelError,
    *,
    config: RetryConfig | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    observer: RetryObserver | None = None,
) -> T:
    """The rest of :func:`call_with_retries` once its first attempt failed with ``first_error`` (for a
    caller that made the first attempt itself); ``first_error`` propagates when no retry is allowed."""
    cfg = _testing or config or RetryConfig()
    if cfg.attempts <= 1:
        raise first_error

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("retrying %s (attempt %d) after %s", name, state.attempt_number + 2, type(error).__name__)
        if observer is not None and error is not None:
            observer.on_retry(name, state.attempt_number + 1, error, wait)

    kwargs: dict[str, object] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    retrying = tenacity.AsyncRetrying(
        # the first of ``attempts`` already failed above; tenacity waits before its first try
        stop=tenacity.stop_after_attempt(cfg.attempts - 1),
        wait=_Wait(cfg),
        retry=tenacity.retry_if_exception_type(TransientChannelError),
        reraise=True,
        before=_wait_first(cfg, sleep, name, observer, first_error),
        before_sleep=before_sleep,
        **kwargs,  # type: ignore[arg-type]
    )

    async def attempt() -> T:
        return await fn()

    return await retrying(attempt)


def _wait_first(
    cfg: RetryConfig,
    sleep: Callable[[float], Awaitable[None]] | None,
    name: str,
    observer: RetryObserver | None,
    error: TransientChannelError,
) -> Callable[[tenacity.RetryCallState], Awaitable[None]]:
    """Back off once before tenacity's first try, which is the call's second attempt."""

    async def before(state: tenacity.RetryCallState) -> None:
        if state.attempt_number == 1:
            wait = backoff(cfg, 1, error)
            log.info("retrying %s (attempt 2) after %s", name, type(error).__name__)
            if observer is not None:
                observer.on_retry(name, 1, error, wait)
            await (sleep or asyncio.sleep)(wait)

    return before
