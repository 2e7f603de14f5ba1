"""Keep Python's full garbage collections off the keystroke path.

A full (generation 2) collection walks every tracked object: with torch,
numpy, Textual and a labelling session loaded that took 80-200 ms on the
2-core benchmark machine, and it fired every couple of seconds while patterns
were drawn, so one keystroke in ten waited for it (benchmarks/tui_latency.py).

The policy: everything alive once the app has started is frozen (it lives as
long as the app), automatic full collections are switched off, and a full
collection runs only when the user has been idle for a moment. Young
generations are still collected automatically; they are cheap.
"""

from __future__ import annotations

import gc
import time

IDLE_SECONDS = 1.0  # no key for this long: a collection cannot delay the next one much
MAX_INTERVAL = 300.0  # collect at least this often, even if someone never pauses for a second
NO_AUTOMATIC_FULL = 1 << 30  # generation-2 threshold: never reached


class IdleCollector:
    """Runs full collections between keystrokes instead of during them."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._last_key = clock()
        self._last_collection = clock()
        self._dirty = False
        self._saved_threshold: tuple[int, int, int] | None = None
        self.collections = 0

    def start(self) -> None:
        """Freeze what start-up made and switch automatic full collections off."""
        gc.freeze()
        self._saved_threshold = gc.get_threshold()
        young, middle, _ = self._saved_threshold
        gc.set_threshold(young, middle, NO_AUTOMATIC_FULL)

    def stop(self) -> None:
        """Restore the interpreter's collection policy."""
        if self._saved_threshold is not None:
            gc.set_threshold(*self._saved_threshold)
            self._saved_threshold = None
        gc.unfreeze()

    def key_pressed(self) -> None:
        self._last_key = self._clock()
        self._dirty = True

    def tick(self) -> bool:
        """Called on a timer: collect if the user is idle (or it has been too long)."""
        now = self._clock()
        idle = now - self._last_key >= IDLE_SECONDS
        overdue = now - self._last_collection >= MAX_INTERVAL
        if not ((idle and self._dirty) or overdue):
            return False
        gc.collect()
        self._last_collection = now
        self._dirty = False
        self.collections += 1
        return True
