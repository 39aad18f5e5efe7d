"""probe's sender without root: retries of silent probes, the per-destination cap and the
adaptive window (the network is faked at `_tcp`; no socket is opened)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from podnet.policy.expectations import Observation
from podnet.probing import send
from podnet.probing.send import ATTEMPTS, PER_DESTINATION, Target, Window, probe_all


def _targets(n: int, hosts: int = 1) -> list[Target]:
    return [Target(f"ns-{i}", f"10.244.0.{i % hosts + 2}", 80, "TCP") for i in range(n)]


def test_a_silent_probe_is_tried_again_and_then_is_no_answer(monkeypatch):
    calls: Counter[str] = Counter()

    async def fake(ns, t, timeout):
        calls[t.netns] += 1
        if t.netns == "ns-0":
            return None  # silent every time
        if calls[t.netns] < 2:
            return None  # silent once, then answers
        return Observation("reply", "x/y c")

    monkeypatch.setattr(send, "_tcp", fake)
    silent, late = asyncio.run(probe_all(_targets(2, hosts=2), timeout=0.01))
    assert (silent.outcome, silent.attempts) == ("no-answer", ATTEMPTS)
    assert "no answer in 3 attempts" in silent.detail
    assert (late.outcome, late.attempts) == ("reply", 2)


def test_an_answer_ends_the_probe_whatever_it_says(monkeypatch):
    async def fake(ns, t, timeout):
        return Observation("rejected")

    monkeypatch.setattr(send, "_tcp", fake)
    [seen] = asyncio.run(probe_all(_targets(1), timeout=0.01))
    assert (seen.outcome, seen.attempts) == ("rejected", 1)


def test_probes_to_one_destination_are_capped(monkeypatch):
    now: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def fake(ns, t, timeout):
        now[t.host] += 1
        peak[t.host] = max(peak[t.host], now[t.host])
        await asyncio.sleep(0.001)
        now[t.host] -= 1
        return Observation("reply", "x")

    monkeypatch.setattr(send, "_tcp", fake)
    seen = asyncio.run(probe_all(_targets(400, hosts=2), timeout=1.0, concurrency=512))
    assert len(seen) == 400 and all(o.outcome == "reply" for o in seen)
    assert max(peak.values()) == PER_DESTINATION


@pytest.mark.parametrize("ceiling", [512, 4])
def test_the_window_halves_on_silence_and_grows_back_by_answers(ceiling):
    w = Window(ceiling, timeout=0.0)
    w.silent()
    assert w.limit == max(ceiling / 2, min(8, ceiling))
    for _ in range(10):
        w.silent()
    assert w.limit == min(8, ceiling)  # never below the floor
    for _ in range(ceiling):
        w.answered()
    assert w.limit == ceiling  # never above what was asked


def test_the_window_cuts_once_per_timeout():
    w = Window(512, timeout=3600.0)
    w.silent()
    w.silent()  # the same congestion, noticed by a second probe: no second cut
    assert w.limit == 256
