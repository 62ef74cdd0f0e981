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

__all__ = ["RetryConfig", "Wait", "aretrying", "backoff", "retry_after_or_backoff", "retrying"]


Wait = Callable[[int, BaseException | None], float]
"""How long to wait after attempt ``n`` failed with an error: ``(n, error) -> seconds``."""


def _config(config: RetryConfig | None) -> RetryConfig:
    return _core_retry._testing or config or RetryConfig()


def retry_after_or_backoff(initial: float, maximum: float) -> Wait:
    """A :data:`Wait`: the error's own ``retry_after`` (seconds, when it has one that is not None), else
    ``initial`` doubled per failed attempt up to ``maximum``.

    :raises ValueError: ``initial`` is negative or ``maximum`` under ``initial``.
    """
    if initial < 0 or maximum < initial:
        raise ValueError(f"backoff needs 0 <= initial <= maximum, not initial={initial!r}, maximum={maximum!r}")

    def wait(attempt: int, error: BaseException | None) -> float:
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            return float(retry_after)
        return float(min(maximum, initial * 2 ** (attempt - 1)))

    return wait


class _Wait(tenacity.wait.wait_base):
    def __init__(self, wait: Wait) -> None:
        self._wait = wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        return self._wait(retry_state.attempt_number, error)


def _kwargs(
    config: RetryConfig | None,
    retry_on: tuple[type[BaseException], ...],
    deadline: float | None,
    wait: Wait | None,
    stop_when: Callable[[float], bool] | None,
    on_retry: Callable[[int, BaseException | None, float], None] | None,
) -> dict[str, object]:
    cfg = _config(config)
    if cfg.attempts < 1:
        raise ValueError(f"RetryConfig.attempts must be at least 1, not {cfg.attempts!r}")
    if deadline is not None and not deadline > 0:
        raise ValueError(f"the deadline must be a positive number of seconds, not {deadline!r}")
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(cfg.attempts)
    if deadline is not None:
        stop = stop | tenacity.stop_after_delay(deadline)
    kwargs_stop: object = stop
    if stop_when is not None:
        check, base = stop_when, stop

        def stop_or_when(state: tenacity.RetryCallState) -> bool:
            return bool(base(state)) or check(state.upcoming_sleep or 0.0)

        kwargs_stop = stop_or_when
    kwargs: dict[str, object] = {
        "stop": kwargs_stop,
        "wait": _Wait(wait or (lambda n, error: backoff(cfg, n, error))),
        "retry": tenacity.retry_if_exception_type(retry_on),
        "reraise": True,
    }
    if on_retry is not None:
        report = on_retry

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            report(state.attempt_number, error, state.next_action.sleep if state.next_action is not None else 0.0)

        kwargs["before_sleep"] = before_sleep
    return kwargs


def retrying(
    config: RetryConfig | None = None,
    *,
    retry_on: tuple[type[BaseException], ...] = (TransientChannelError,),
    deadline: float | None = None,
    sleep: Callable[[float], None] | None = None,
    wait: Wait | None = None,
    stop_when: Callable[[float], bool] | None = None,
    on_retry: Callable[[int, BaseException | None, float], None] | None = None,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` for blocking calls: ``retrying(...)(fn, *args)``, or
    ``for attempt in retrying(): with attempt: ...``.

    :param config: attempts and backoff (default :class:`RetryConfig`); under
        :func:`~delivery_sdk.retry.set_testing` the testing configuration wins.
    :param retry_on: the exceptions worth another attempt (default :class:`~delivery_sdk.TransientChannelError`);
        anything else propagates at once.
    :param deadline: stop retrying once this many seconds have passed since the first attempt.
    :param sleep: how to wait (tests).
    :param wait: the wait after each failed attempt (default: the engine's backoff with ``config``;
        :func:`retry_after_or_backoff` honours a provider's ``Retry-After``).
    :param stop_when: called with the wait about to start; True stops (a budget kept by the caller's clock).
    :param on_retry: told ``(attempt, error, wait)`` before each wait (a log line).
    :raises ValueError: ``config.attempts`` under 1 or a deadline that is not positive.

    The last error propagates unchanged (``reraise``); ``.statistics["attempt_number"]`` counts the attempts.
    """
    kwargs = _kwargs(config, retry_on, deadline, wait, stop_when, on_retry)
    if sleep is not None:
        kwargs["sleep"] = sleep
    return tenacity.Retrying(**kwargs)  # type: ignore[arg-type]


def aretrying(
    config: RetryConfig | None = None,
    *,
    retry_on: tuple[type[BaseException], ...] = (TransientChannelError,),
    deadline: float | None = None,
    wait: Wait | None = None,
    on_retry: Callable[[int, BaseException | None, float], None] | None = None,
) -> tenacity.AsyncRetrying:
    """:func:`retrying` for coroutines: ``async for attempt in aretrying(): with attempt: ...``.

    :raises ValueError: as :func:`retrying`.
    """
    return tenacity.AsyncRetrying(**_kwargs(config, retry_on, deadline, wait, None, on_retry))  # type: ignore[arg-type]
