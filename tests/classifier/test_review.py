import json
from pathlib import Path

import numpy as np
import pytest

from parley.classifier import review
from parley.classifier.model import Item, Triager
from parley.config import REPO_ROOT

CUES_FILE = REPO_ROOT / "models" / "urgent_review.yaml"


@pytest.fixture(scope="module")
def cues() -> review.ReviewCues:
    return review.ReviewCues.load(CUES_FILE)


@pytest.fixture(scope="module")
def triager() -> Triager:
    return Triager(REPO_ROOT / "models")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("@comcast this is the third outage, cc @FTC", "regulator/US: @FTC"),
        ("@united I'm writing to @TXAttorneyGeneral about this", "attorney_general/US: @TXAttorneyGeneral"),
        ("@virginmedia sending this to @WhichUK", "consumer_protection/GB: @WhichUK"),
        ("@brand off to the consumer forum with this", "regulator/IN: consumer forum"),
        ("@brand maybe @nytimes wants to hear it", "press/US: @nytimes"),
        ("@airline can't reach my destination @BostonBBB #notmyfault", "consumer_protection/US: @BostonBBB"),
        ("@airline delays keep growing @orlandosentinel", "press/US: @orlandosentinel"),
        ("@brand someone keeps hacking my account", "account_takeover: keeps hacking"),
        ("@brand I'm being hacked", "account_takeover: being hacked"),
        ("@brand someone has been using my account", "account_takeover: someone has been using my account"),
        ("locked for suspicious activity again", "account_takeover: locked for suspicious activity"),
        ("@amazon 警察に相談します", "regulator/JP: 警察"),
        ("@united we are stuck at the airport with two kids", "stranded: stuck at the airport"),
        ("@delta slept at the airport last night, nobody at the desk", "stranded: slept at the airport"),
        ("@usairways 8 weeks for a refund, I'll put it on blast", "press/US: put it on blast"),
        ("@lyft the driver pulled over and we went to the police", "law_enforcement/US: went to the police"),
        ("@mybank my card is on a fraud hold and I'm abroad", "account_takeover: fraud hold"),
    ],
)
def test_cues_match_the_raw_text(cues: review.ReviewCues, text: str, label: str) -> None:
    assert label in cues.reasons(text)
    assert cues.reasons_many([text]) == [cues.reasons(text)]


@pytest.mark.parametrize(
    "text",
    [
        "@FTCfan great show",  # a longer handle is not the regulator's
        "@brand where is the dot on the map",
        "@brand thanks, all sorted",
        "@united my flight was hacked to pieces by delays",  # no "being/got hacked"
        "@united my flight last month was delayed and the crew was rude",  # no deadline, not stuck
        "@jetblue are the emergency exit rows extra?",  # an exit row is no emergency
        "@tesco that new font is an assault on the eyes",  # a figure of speech, no one assaulted
        "@sainsburys I think I left them at the till",  # things left behind, not people
        "@united stuck on hold again, what a service",  # on hold is not stuck on the way
        "@delta do you check car seats for free?",  # a question about a car seat, none lost
    ],
)
def test_cues_do_not_match_lookalikes(cues: review.ReviewCues, text: str) -> None:
    assert cues.reasons(text) == []


def test_batched_scan_equals_per_text(cues: review.ReviewCues) -> None:
    texts = [
        "@FTC now",
        "plain",
        "naïve café 😀 @BBB_US",
        "",
        "lone \ud800 surrogate @FTC",  # not UTF-8: the per-text path
        "someone has been using my account and @CFPB knows",
    ]
    assert cues.reasons_many(texts) == [cues.reasons(t) for t in texts]
    assert cues.reasons_many(texts[:4]) == [cues.reasons(t) for t in texts[:4]]


@pytest.mark.parametrize(
    "text",
    [
        "@SouthwestAir flight cancelled, been on hold 2 hours, I need to get home tonight",
        "@united need to get to Denver for a funeral tomorrow and you cancelled my flight",
        "@AmericanAir delayed again, only 20 minutes to make my connection",
    ],
)
def test_a_disrupted_trip_with_a_deadline_is_flagged_as_stranded(cues: review.ReviewCues, text: str) -> None:
    reasons = cues.reasons(text)
    assert any(r.startswith("stranded: ") for r in reasons)
    assert cues.reasons_many([text]) == [reasons]


def test_bad_file_names_the_entry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"situations\.stranded: unknown keys \['accounts'\]"):
        review.parse({"situations": {"stranded": {"accounts": ["x"]}}})
    with pytest.raises(ValueError, match=r"countries\.US\.press\.words\[1\]"):
        review.parse({"countries": {"US": {"press": {"words": ["ok", "(unclosed"]}}}})
    with pytest.raises(ValueError, match=r"countries\.US\.press\.accounts"):
        review.parse({"countries": {"US": {"press": {"accounts": ["not a handle"]}}}})
    assert review.ReviewCues.load(tmp_path / "missing.yaml").reasons("@FTC") == []


def test_flags_follow_intent_probability_cues_and_earlier_turns(cues: review.ReviewCues) -> None:
    texts = ["fine", "fine", "@FTC hello", "still nothing?", "still nothing?"]
    contexts = [(), (), (), ("someone has been using my account",), ("my parcel is late",)]
    intents = ["urgent", "complaint", "complaint", "complaint", "complaint"]
    p = np.array([0.01, 0.30, 0.01, 0.01, 0.01])
    flags, reasons = review.flag_many(cues, texts, contexts, intents, p, threshold=0.25)
    assert flags == [True, True, True, True, False]
    assert reasons[2] == ["regulator/US: @FTC"]
    assert reasons[3] and reasons[3][0].startswith("earlier turn ")
    flags, _ = review.flag_many(cues, texts, contexts, intents, p, threshold=0.5)
    assert flags == [True, False, True, True, False]


def test_every_triage_carries_the_review_flag(triager: Triager) -> None:
    out = triager.classify(
        [
            Item("a", "@delta thanks, lovely flight"),
            Item("b", "@comcast fix my bill or I'm going to @FTC"),
            Item("c", "@brand any update?", context=("someone logged into my account and changed my email",)),
        ]
    )
    assert [t.urgent_review for t in out] == [False, True, True]
    assert out[1].review_reasons == ["regulator/US: @FTC"]
    assert out[1].intent != "urgent" or out[1].urgency_reasons


def test_threshold_from_settings_overrides_the_trained_one() -> None:
    everything = Triager(REPO_ROOT / "models", urgent_threshold=0.0)
    assert everything.classify([Item("a", "@delta thanks, lovely flight")])[0].urgent_review


def test_review_flag_reaches_the_proto_and_the_json_lines(triager: Triager, tmp_path: Path) -> None:
    from parley.classifier.csv_triage import classify_csv
    from parley.classifier.servicer import triage_pb

    [t] = triager.classify([Item("m", "@comcast fix my bill or I'm going to @FTC")])
    pb = triage_pb(t)
    assert pb.urgent_review and list(pb.review_reasons) == ["regulator/US: @FTC"]
    data = tmp_path / "in.csv"
    data.write_text(
        "id,text\n1,@comcast fix my bill or I'm going to @FTC\n2,@delta thanks for a lovely flight\n"
    )
    out = tmp_path / "out.jsonl"
    classify_csv(data, out, REPO_ROOT / "models")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["urgent_review"] for line in lines] == [True, False]
    assert lines[0]["review_reasons"] == ["regulator/US: @FTC"]


def test_a_question_flagged_for_review_never_goes_to_the_bot() -> None:
    answered = Triager(REPO_ROOT / "models", urgent_threshold=1.0)
    flagged = Triager(REPO_ROOT / "models", urgent_threshold=0.0)
    question = [Item("q", "@AcmeCare what are your customer service opening hours?", "x")]
    [plain], [review_first] = answered.classify(question), flagged.classify(question)
    assert plain.intent == "question" and not plain.bot_answer.abstained
    assert review_first.urgent_review and review_first.bot_answer.abstained


@pytest.mark.parametrize(
    ("text", "situation"),
    [
        ("@united you broke my mother's wheelchair and she cannot get off the plane", "health_safety"),
        ("@delta my insulin is in the bag you lost", "health_safety"),
        ("@aa my dad is very ill and I have to fly out tonight", "health_safety"),
        ("@southwest a passenger was groped on flight 12 and the crew did nothing", "health_safety"),
        ("@jetblue the man in 14C has a knife", "health_safety"),
        ("@airline you lost the car seat, how do I drive my baby home", "health_safety"),
        ("@united still at the layover airport, 9 hours now", "stranded"),
        ("@aa stuck in Dallas until Thursday with two kids", "stranded"),
        ("@delta no more flights until tomorrow evening?", "stranded"),
        ("@southwest we need to be home in the next 3 hours for my son", "stranded"),
        ("@bank I urgently need my card unblocked", "said_urgent"),
        ("@airline we have a family emergency, please call me", "said_urgent"),
    ],
)
def test_situations_told_in_words_are_flagged(cues: review.ReviewCues, text: str, situation: str) -> None:
    reasons = cues.reasons(text)
    assert any(r.startswith(situation + ": ") for r in reasons), reasons
    assert cues.reasons_many([text]) == [reasons]


def test_the_shipped_cues_file_validates_with_every_situation() -> None:
    import yaml

    doc = yaml.safe_load(CUES_FILE.read_text(encoding="utf-8"))
    assert {"stranded", "health_safety", "said_urgent"} <= set(doc["situations"])
    labels = {cue.label for cue in review.parse(doc)}
    assert {"stranded", "health_safety", "said_urgent", "account_takeover"} <= labels
