"""The app's garbage-collection policy: full collections only between keystrokes."""

from __future__ import annotations

import gc

import pytest

from ghosttui.tui.idle_gc import IDLE_SECONDS, MAX_INTERVAL, IdleCollector


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def collector():
    clock = FakeClock()
    before = gc.get_threshold()
    idle = IdleCollector(clock)
    idle.start()
    yield idle, clock
    idle.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_start_freezes_and_switches_off_automatic_full_collections(collector):
    assert collector
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[2] >= 1 << 30


def test_collects_only_after_a_pause_in_typing(collector):
    idle, clock = collector
    assert not idle.tick()  # nothing typed yet: nothing to collect
    for _ in range(10):  # someone typing a key every 0.3 s
        idle.key_pressed()
        clock.now += 0.3
        assert not idle.tick()
    clock.now += IDLE_SECONDS
    assert idle.tick() and idle.collections == 1
    assert not idle.tick()  # once per pause, not on every tick


def test_collects_at_least_every_max_interval_while_typing(collector):
    idle, clock = collector
    collected = 0
    steps = int(2.5 * MAX_INTERVAL / 0.3)
    for _ in range(steps):
        idle.key_pressed()
        clock.now += 0.3
        collected += idle.tick()
    assert collected == 2


def test_cyclic_garbage_made_while_running_is_freed(collector):
    idle, clock = collector

    class Node:
        pass

    import weakref

    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    gc.collect(1)  # the live cycle is promoted to the oldest generation
    del a, b
    gc.collect(1)  # young collections do not reach it: garbage until a full collection
    assert ref() is not None
    idle.key_pressed()
    clock.now += IDLE_SECONDS + 0.1
    assert idle.tick()
    assert ref() is None
