"""The declared retry policy on the assets that meet the outside world (:mod:`ml.retry` decides what is
transient): transient failures are retried with exponential backoff and jitter; permanent ones are raised as a
``dg.Failure`` that forbids retries, so the run fails at once with the message."""

from __future__ import annotations

import functools
import inspect

import dagster as dg

from ml.retry import TRANSIENT_RETRIES, is_transient, retry_delay_seconds

TRANSIENT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=TRANSIENT_RETRIES,
    delay=retry_delay_seconds(),
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def _permanent(exc: BaseException) -> dg.Failure:
    if isinstance(exc, dg.Failure):
        return dg.Failure(description=exc.description, metadata=exc.metadata, allow_retries=False)
    return dg.Failure(
        description=f"{type(exc).__name__}: {exc} (a permanent failure: not retried)",
        metadata={"error": type(exc).__name__},
        allow_retries=False,
    )


def _reraise(exc: Exception):
    """A transient failure as it is (the retry policy takes it), any other as a Failure that forbids retries."""
    if is_transient(exc):
        raise exc
    raise _permanent(exc) from exc


def fail_fast_unless_transient(fn):
    """Let transient failures through to the retry policy; turn every other one into a non-retried Failure."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                _reraise(exc)

        return generator

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            _reraise(exc)

    return plain
