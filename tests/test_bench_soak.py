"""The soak's memory judgement and the /proc readings it rests on."""

import os

import pytest

from parley.bench import memory_report, process_rss_bytes


def _samples(router_mb: list[int]) -> list[dict[str, int]]:
    return [
        {"messages": 1000 * (i + 1), "router": int(mb * 2**20), "redis": 1_000_000 + 500 * 1000 * (i + 1)}
        for i, mb in enumerate(router_mb)
    ]


def test_a_process_within_ten_percent_of_its_settled_reading_is_flat() -> None:
    # The first tenth of the rounds fills caches: growth there does not count.
    report = memory_report(_samples([50, 90, 92, 91, 93, 95, 94, 96, 97, 98]))
    assert report["soak_settled_after_messages"] == 1000
    assert report["soak_memory"]["router"]["flat"] is False  # 50 → 98 MB from the very first reading
    report = memory_report(_samples([50] + [90] * 18 + [98]))
    assert report["soak_settled_after_messages"] == 2000
    assert report["soak_memory"]["router"] == {
        "rss_mb_settled": 90.0,
        "rss_mb_end": 98.0,
        "change": pytest.approx(0.0889, abs=1e-4),
        "flat": True,
    }
    assert report["soak_all_flat"] is True


def test_a_process_that_keeps_growing_is_not_flat_and_redis_is_reported_per_message() -> None:
    report = memory_report(_samples([90] * 5 + [100, 110, 120, 130, 140]))
    assert report["soak_memory"]["router"]["flat"] is False
    assert report["soak_all_flat"] is False
    assert report["soak_redis_bytes_per_message"] == 500.0


def test_resident_memory_is_read_from_proc_and_none_once_the_process_is_gone() -> None:
    assert (process_rss_bytes(os.getpid()) or 0) > 10 * 2**20
    assert process_rss_bytes(2**22 + 12345) is None
