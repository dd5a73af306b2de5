"""The public-PII guard against a corpus of tricky replies (tests/dispatch/data/pii_corpus.yaml).

Each reply carries its expected verdict: the sensitive types it exposes, or none. Safe replies are as many as
exposing ones, so a guard that flags everything fails here as surely as one that flags nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import yaml

from parley.config import Settings
from parley.dispatch import pii
from parley.dispatch.guard import sensitive_types

CORPUS = yaml.safe_load((Path(__file__).parent / "data" / "pii_corpus.yaml").read_text(encoding="utf-8"))


def test_the_corpus_is_large_and_balanced() -> None:
    exposing = [case for case in CORPUS if case["expect"]]
    assert len(CORPUS) >= 100
    assert 0.3 < len(exposing) / len(CORPUS) < 0.7


@pytest.mark.parametrize("case", CORPUS, ids=[f"{i:03d}" for i in range(len(CORPUS))])
def test_verdict(case: dict[str, Any]) -> None:
    found = sensitive_types(case["text"])
    if case["expect"]:
        assert set(case["expect"]) <= set(found), f"missed in {case['text']!r}: found {found}"
    else:
        assert found == [], f"false alarm on {case['text']!r}: {found}"


def test_phone_regions_come_from_settings() -> None:
    # A French mobile in national form is a phone number only where French formats are read.
    text = "Nous vous rappelons au 06 12 34 56 78 demain."
    assert sensitive_types(text, Settings(dispatch_pii_phone_regions="FR")) == ["phone"]
    assert sensitive_types(text, Settings(dispatch_pii_phone_regions="US")) == []


def test_spelled_out_forms_are_read_back() -> None:
    assert pii.readings("dana dot k at example dot com")[-1] == "dana.k@example.com"
    assert pii.readings("four one five double five oh one three two")[-1] == "415550132"
    assert pii.normalise("a\u200bb\u2060c\ufeff＠") == "abc@"


def test_the_phone_prefilter_rests_on_the_shortest_number_of_any_region() -> None:
    # Texts without that many digits close together skip libphonenumber: the count must stay true.
    lengths = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        desc = metadata.general_desc if metadata is not None else None
        if desc is not None and desc.possible_length:
            lengths.append(min(desc.possible_length))
    shortest = min(lengths)
    assert shortest == pii.SHORTEST_NUMBER


@pytest.mark.parametrize(
    "text",
    [
        "call +44 (0)20-7946-0958 now",
        "ring ０２０ ７９４６ ０９５８",  # full-width digits and an ideographic space
        "phone 020\u30fc7946\u30fc0958",  # the katakana long-vowel mark as a dash
        "text 415.555.0132 x 12",
        "at four one five five five five oh one three two",
    ],
)
def test_numbers_with_separators_pass_the_prefilter(text: str) -> None:
    assert any(pii._NUMBER_LIKE.search(reading) for reading in pii.readings(text))
