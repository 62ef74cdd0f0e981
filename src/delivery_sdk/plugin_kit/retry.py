"""The one retry policy of every plugin (tenacity), for calls an adapter makes outside the engine.

The engine already retries an adapter's ``send`` and ``status`` (:mod:`delivery_sdk.retry`); an adapter
that makes several provider calls of its own (a notary's queue flush, a registry's lookups, a token fetch)
retries them with :func:`retrying` or :func:`aretrying`, which share the engine's :class:`RetryConfig`:
the same backoff, jitter and ``Retry-After`` handling, and :func:`~delivery_sdk.retry.set_testing` turns
them off in tests as it does the engine's.
"""

from __future__ import annotations

from collections.abc import Callable

import tenacity

from .. import retry as _core_retry
from .._exceptions import TransientChannelError
from ..retry import RetryConfig, backoff

__all__ = ["RetryConfig", "aretrying", "backoff", "retrying"]


def _config(config: RetryConfig | None) -> RetryConfig:
    return _core_retry._testing or config or RetryConfig()


class _Wait(tenacity.wait.wait_base):
    def __init__(self, config: RetryConfig) -> None:
        self._config = config

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        return backoff(self._config, retry_state.attempt_number, error)


def _kwargs(
    config: RetryConfig | None, retry_on: tuple[type[BaseException], ...], deadline: float | None
) -> dict[str, object]:
    cfg = _config(config)
    if cfg.attempts < 1:
        raise ValueError(f"RetryConfig.attempts must be at least 1, not {cfg.attempts!r}")
    if deadline is not None and not deadline > 0:
        raise ValueError(f"the deadline must be a positive number of seconds, not {deadline!r}")
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(cfg.attempts)
    if deadline is not None:
        stop = stop | tenacity.stop_after_delay(deadline)
    return {
        "stop": stop,
        "wait": _Wait(cfg),
        "retry": tenacity.retry_if_exception_type(retry_on),
        "reraise": True,
    }


def retrying(
    config: RetryConfig | None = None,
    *,
    retry_on: tuple[type[BaseException], ...] = (TransientChannelError,),
    deadline: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` for blocking calls: ``for attempt in retrying(): with attempt: ...``.

    :param config: attempts and backoff (default :class:`RetryConfig`); under
        :func:`~delivery_sdk.retry.set_testing` the testing configuration wins.
    :param retry_on: the exceptions worth another attempt (default :class:`~delivery_sdk.TransientChannelError`);
        anything else propagates at once.
    :param deadline: stop retrying once this many seconds have passed since the first attempt.
    :param sleep: how to wait (tests).
    :raises ValueError: ``config.attempts`` under 1 or a deadline that is not positive.

    The last error propagates unchanged (``reraise``).
    """
    kwargs = _kwargs(config, retry_on, deadline)
    if sleep is not None:
        kwargs["sleep"] = sleep
    return tenacity.Retrying(**kwargs)  # type: ignore[arg-type]


def aretrying(
    config: RetryConfig | None = None,
    *,
    retry_on: tuple[type[BaseException], ...] = (TransientChannelError,),
    deadline: float | None = None,
) -> tenacity.AsyncRetrying:
    """:func:`retrying` for coroutines: ``async for attempt in aretrying(): with attempt: ...``.

    :raises ValueError: as :func:`retrying`.
    """
    return tenacity.AsyncRetrying(**_kwargs(config, retry_on, deadline))  # type: ignore[arg-type]
