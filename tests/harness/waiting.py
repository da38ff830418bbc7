"""Waiting for something observable instead of sleeping and hoping it happened.

What a test waits for often has nothing to be woken by: a request the mock model recorded (on
another thread), a file the server under test writes, a process in /proc. `wait_until` checks the
condition every few milliseconds, bounded, and says what it was waiting for when it gives up.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

# Short enough not to slow a test down, long enough not to compete for the two cores.
POLL_INTERVAL_S = 0.02


async def wait_until(
    condition: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = POLL_INTERVAL_S
) -> None:
    """Return once `condition()` is true; fail the test after `timeout_s` naming `what`."""
    try:
        with anyio.fail_after(timeout_s):
            while not condition():  # noqa: ASYNC110 - nothing to be woken by (see the module docstring)
                await anyio.sleep(interval_s)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout_s}s waiting for {what}") from None
