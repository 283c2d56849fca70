"""A CPU-time budget for the work done on one feed's content.

Parsing and text extraction are linear in the size of a feed, but a large,
crafted feed can still cost seconds of CPU; without a bound it would hold up
every other feed of the cycle on every poll. :func:`cpu_budget` interrupts the
work once the process has spent ``seconds`` of CPU time on it (``SIGPROF``
timer), and the feed fails with a clear reason while the others go on.

Signals reach only the main thread of a process: the parse worker processes
run their tasks there, so they always get the budget. Elsewhere (a poll run by
the daemon's scheduler thread) the budget is not available and the work runs
unbounded; it is still linear.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["BudgetExceeded", "cpu_budget"]


class BudgetExceeded(BaseException):
    """The work went over its CPU budget.

    A ``BaseException``, like ``KeyboardInterrupt``: the per-entry ``except Exception`` guards of the
    parse must not mistake it for one entry's failure and carry on.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"over its {seconds:g} s CPU budget")
        self.seconds = seconds


@contextmanager
def cpu_budget(seconds: float | None) -> Iterator[bool]:
    """Raise :class:`BudgetExceeded` inside the block after ``seconds`` of process CPU time.

    Yields whether the budget is enforced (only in a main thread, on systems with ``setitimer``).
    """
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield False
        return
    assert seconds is not None

    def _expired(signum: int, frame: FrameType | None) -> None:
        raise BudgetExceeded(seconds)

    previous = signal.signal(signal.SIGPROF, _expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
