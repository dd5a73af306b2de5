from pathlib import Path

import pytest

from parley.classifier.knowledge import Answer, KnowledgeBase
from parley.config import REPO_ROOT

KB_FILE = REPO_ROOT / "models" / "knowledge_base.yaml"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.from_yaml(KB_FILE)


def test_shipped_knowledge_base_is_well_formed(kb: KnowledgeBase) -> None:
    ids = [a.id for a in kb.answers]
    assert 25 <= len(ids) <= 40
    assert len(ids) == len(set(ids))
    topics = {"billing", "orders_delivery", "account_access", "technical", "travel", "general"}
    for a in kb.answers:
        assert a.topic in topics and a.text and len(a.questions) >= 3


def test_answers_a_paraphrase(kb: KnowledgeBase) -> None:
    [ans] = kb.answer_many(["hey, how can I get my password reset?"], ["question"], ["x"])
    assert (ans.answer_id, ans.abstained) == ("reset_password", False)
    assert ans.text and ans.confidence >= kb.threshold


def test_abstains_on_unrelated_question(kb: KnowledgeBase) -> None:
    [ans] = kb.answer_many(["what is the capital of France?"], ["question"], ["x"])
    assert ans.abstained and ans.reason == "low_confidence" and ans.text == ""


def test_abstains_when_not_a_question(kb: KnowledgeBase) -> None:
    texts = ["how do I reset my password, I've tried 5 times and your site is broken"] * 2
    for ans in kb.answer_many(texts, ["complaint", "urgent"], ["x", "x"]):
        assert ans.abstained and ans.reason == "not_a_question"


def test_abstains_on_a_channel_the_answer_is_not_allowed_on(tmp_path: Path) -> None:
    only_dm = Answer(
        "order_status", "orders_delivery", ("whatsapp",), "It ships tomorrow.", ("where is my order",)
    )
    kb = KnowledgeBase([only_dm], threshold=0.3)
    on_x, on_whatsapp = kb.answer_many(["where is my order?"] * 2, ["question"] * 2, ["x", "whatsapp"])
    assert on_x.abstained and on_x.reason == "channel_not_allowed"
    assert not on_whatsapp.abstained and on_whatsapp.text == "It ships tomorrow."


def test_words_outside_the_paraphrases_count_against_a_match() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    store = Answer("store", "general", ("x",), "We have 40 stores.", ("where is your store",))
    message = "is the phone promotion only on the website or in store too?"
    # Fitted on the paraphrases alone, every other word of the message is unknown and "store" looks perfect.
    narrow = KnowledgeBase([store], threshold=0.5)
    assert narrow.scores([message])[1][0] > 0.9
    # In a vocabulary that knows the message's words, the lone shared word is a weak match.
    wide = TfidfVectorizer().fit([message, "where is your store", "the website is down", "a new phone"])
    kb = KnowledgeBase([store], threshold=0.5, vectorize=wide.transform)
    [ans] = kb.answer_many([message], ["question"], ["x"])
    assert ans.abstained and ans.reason == "low_confidence" and ans.confidence < 0.5
    [hit] = kb.answer_many(["where is your store?"], ["question"], ["x"])
    assert not hit.abstained and hit.answer_id == "store"


def test_abstains_when_the_answer_does_not_fit_the_situation(kb: KnowledgeBase) -> None:
    plain, cancelled = kb.answer_many(
        ["how do I change my flight?", "4 hours on hold. How do I change my flight that was cancelled?"],
        ["question", "question"],
        ["x", "x"],
    )
    assert (plain.answer_id, plain.abstained) == ("change_flight", False)
    assert cancelled.abstained and cancelled.reason == "needs_agent" and cancelled.text == ""
    assert cancelled.answer_id == "change_flight"


def test_unless_words_match_word_beginnings_only() -> None:
    change = Answer("change", "travel", ("x",), "Use Manage booking.", ("change my flight",), ("cancel",))
    assert change.excluded_by("my flight was Cancelled") == "Cancel"
    assert change.excluded_by("the concelled... no, uncancelled flight") is None
    assert Answer("a", "general", ("x",), "t", ("q",)).excluded_by("cancel") is None
