"""The soak's memory judgement and the /proc readings it rests on."""

import os

from parley.bench import memory_report, process_rss_bytes


def _samples(router_mb: list[float]) -> list[dict[str, int]]:
    return [
        {"messages": 1000 * (i + 1), "router": int(mb * 2**20), "redis": 1_000_000 + 500 * 1000 * (i + 1)}
        for i, mb in enumerate(router_mb)
    ]


def test_growth_after_the_first_tenth_of_the_rounds_counts_and_before_it_does_not() -> None:
    report = memory_report(_samples([50, 90, 92, 91, 93, 95, 94, 96, 97, 98]))
    assert report["soak_settled_after_messages"] == 1000
    assert report["soak_memory"]["router"]["flat"] is False  # 50 → 98 MB from the very first reading
    report = memory_report(_samples([50] + [90] * 18 + [98]))
    assert report["soak_settled_after_messages"] == 2000
    assert report["soak_judged_over_rounds"] == 3
    assert report["soak_memory"]["router"] == {
        "rss_mb_settled": 90.0,
        "rss_mb_end": 90.0,
        "rss_mb_range": [90.0, 98.0],
        "change": 0.0,
        "flat": True,
    }
    assert report["soak_all_flat"] is True


def test_a_process_that_swings_without_a_trend_is_flat_whatever_reading_comes_first() -> None:
    # 91 to 102 MB from round to round, as the workers moved in a million-message soak: judged by single
    # readings, a low first one and a high last one made this +12%.
    swings = [95, 91, 102, 96, 99, 93, 101, 95, 98, 92, 100, 94, 97, 96, 99, 93, 101, 95, 98, 92, 102]
    report = memory_report(_samples(swings))
    router = report["soak_memory"]["router"]
    assert router["flat"] is True and abs(router["change"]) < 0.05
    assert router["rss_mb_range"] == [91.0, 102.0]


def test_a_process_that_keeps_growing_is_not_flat_and_redis_is_reported_per_message() -> None:
    report = memory_report(_samples([90] * 5 + [100, 110, 120, 130, 140]))
    assert report["soak_memory"]["router"]["flat"] is False
    assert report["soak_all_flat"] is False
    assert report["soak_redis_bytes_per_message"] == 500.0
    # A steady climb of 1% a round over 40 rounds is caught even though no two neighbouring readings differ
    # by more than 1%.
    report = memory_report(_samples([100 * 1.01**i for i in range(40)]))
    assert report["soak_memory"]["router"]["flat"] is False


def test_resident_memory_is_read_from_proc_and_none_once_the_process_is_gone() -> None:
    assert (process_rss_bytes(os.getpid()) or 0) > 10 * 2**20
    assert process_rss_bytes(2**22 + 12345) is None


def test_a_process_missing_from_an_early_reading_is_judged_by_the_readings_it_has() -> None:
    samples = _samples([50] + [90] * 18 + [92])
    del samples[2]["router"]  # down during the first judged round, as after a kill
    report = memory_report(samples)
    assert report["soak_memory"]["router"]["rss_mb_settled"] == 90.0
    assert report["soak_memory"]["router"]["flat"] is True
    del samples[-1]["router"]  # and a process missing at the end is left out, not judged
    assert "router" not in memory_report(samples)["soak_memory"]
