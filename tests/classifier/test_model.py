import math

import pytest

from parley.classifier.model import INTENTS, TOPICS, Item, Triager, normalize
from parley.config import REPO_ROOT


@pytest.fixture(scope="module")
def triager() -> Triager:
    return Triager(REPO_ROOT / "models")


def one(triager: Triager, text: str, channel: str = "x"):
    return triager.classify([Item("m1", text, channel)])[0]


def test_normalize_fixes_artifacts_and_replaces_tokens() -> None:
    assert normalize("@united Flight Cancelled Flightled, Late Flightr http://t.co/x 123") == (
        "xhandle flight cancelled, later xurl xnum"
    )


def test_probabilities_cover_all_intents_and_sum_to_one(triager: Triager) -> None:
    texts = ["thanks!", "where is my order #1234?", "worst airline ever", "", "asdf qwerty"]
    results = triager.classify([Item(str(i), t) for i, t in enumerate(texts)])
    assert [r.message_id for r in results] == ["0", "1", "2", "3", "4"]
    for r in results:
        assert set(r.scores) == set(INTENTS)
        assert math.isclose(sum(r.scores.values()), 1.0, abs_tol=1e-6)
        assert all(0.0 <= p <= 1.0 for p in r.scores.values())
        assert r.topic in TOPICS and 0.0 < r.topic_confidence <= 1.0
        assert r.model_intent == max(r.scores, key=r.scores.get)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("someone logged into my account and changed my email", "urgent"),
        ("thanks, love the new app", "praise"),
        ("there was glass in my sandwich, my kid cut his mouth", "urgent"),
        ("my card was stolen, please block it", "urgent"),
        ("3rd time my order is late", "complaint"),
        ("the app keeps crashing every time I open it", "complaint"),
        ("how do I reset my password?", "question"),
        ("what are your opening hours on sunday?", "question"),
        ("lol who else is watching the game", "other"),
    ],
)
def test_obvious_cases(triager: Triager, text: str, intent: str) -> None:
    assert one(triager, text).intent == intent


def test_rule_raises_model_intent_and_is_explained(triager: Triager) -> None:
    r = one(triager, "Loving the new menu! Btw there was glass in my burger and my son cut his mouth")
    assert r.intent == "urgent"
    assert r.explanation.rules_fired == ["safety_health"]
    assert r.urgency_reasons == ["safety_health: glass in my burger"]


def test_explanation_and_entities(triager: Triager) -> None:
    r = one(triager, "thanks @acme, order #55501 arrived early, love it")
    assert r.explanation.model_version == triager.version
    assert r.explanation.top_features and all(w > 0 for _, w in r.explanation.top_features)
    assert [(e.type, e.text) for e in r.entities] == [("handle", "@acme"), ("order_number", "55501")]


def test_bot_answer_only_for_questions(triager: Triager) -> None:
    asked = one(triager, "how can I track my order?")
    assert asked.intent == "question"
    assert not asked.bot_answer.abstained and asked.bot_answer.answer_id == "track_order"
    moaned = one(triager, "I've tried to track my order for a week and your site is broken, useless")
    assert moaned.intent == "complaint" and moaned.bot_answer.abstained


def test_empty_batch(triager: Triager) -> None:
    assert triager.classify([]) == []
