import gc
import math
import re
import subprocess
import sys

import pytest

from parley.classifier.model import INTENTS, TOPICS, Item, Triager
from parley.classifier.text import CONTEXT_TOKEN, TOKEN_PATTERN, model_texts, normalize_many, tokens_many
from parley.config import REPO_ROOT


@pytest.fixture(scope="module")
def triager() -> Triager:
    return Triager(REPO_ROOT / "models")


def one(triager: Triager, text: str, channel: str = "x"):
    return triager.classify([Item("m1", text, channel)])[0]


def test_normalize_fixes_artifacts_and_replaces_tokens() -> None:
    airline, mail = normalize_many(
        [
            "@united Flight Cancelled Flightled, Late Flightr http://t.co/x 123",
            "mail me at jo@x.com &amp; call 555-1234",
        ]
    )
    assert airline.split() == ["xhandle", "flight", "cancelled,", "later", "xurl", "xnum"]
    assert mail.split() == [
        "mail",
        "me",
        "at",
        "xemail",
        "&",
        "call",
        "xnum",
    ]


TRICKY = [
    "",
    "   ",
    "?!?",
    "why?? why!!",
    "don’t stop — naïve café_bar 😀 ok",
    "tabs\tand\nnewlines",
    "résumé über straße 123abc a&e",
    "snake_case __init__ x_y",
    "@brand (hi) [there] {you} <3 100% #tag",
]


def test_tokens_match_the_vectorizer_pattern() -> None:
    assert tokens_many(TRICKY) == [re.findall(TOKEN_PATTERN, text) for text in TRICKY]


def test_a_batch_function_refuses_one_string() -> None:
    with pytest.raises(TypeError):
        normalize_many("one message")


def test_context_marks_follow_ups() -> None:
    opener, follow_up = model_texts(["done", "done"], [(), ("my router keeps dropping",)])
    assert opener == "done"
    assert follow_up.split() == ["done", CONTEXT_TOKEN]


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


def test_context_is_used(triager: Triager) -> None:
    assert CONTEXT_TOKEN in triager.intent.features.vocabulary_
    alone = triager.classify([Item("a", "ok done, sent you a DM")])[0]
    follow_up = triager.classify([Item("b", "ok done, sent you a DM", "x", ("my wifi keeps dropping",))])[0]
    assert alone.scores != follow_up.scores


def test_explanations_name_features_of_the_message(triager: Triager) -> None:
    [r] = triager.classify([Item("m", "worst airline ever, lost my bag again")])
    vocabulary = triager.intent.features.vocabulary_
    assert r.explanation.top_features
    for name, weight in r.explanation.top_features:
        assert name in vocabulary and weight > 0
        assert all(
            word in model_texts(["worst airline ever, lost my bag again"])[0].split() for word in name.split()
        )


def test_batch_results_do_not_depend_on_batch_composition(triager: Triager) -> None:
    texts = ["how do I reset my password?", "my card was stolen", "thanks!!", "lol", "order #5551 is late"]
    together = triager.classify([Item(str(i), t) for i, t in enumerate(texts)])
    for i, t in enumerate(texts):
        [alone] = triager.classify([Item(str(i), t)])
        assert alone.intent == together[i].intent and alone.entities == together[i].entities
        assert all(math.isclose(alone.scores[c], together[i].scores[c], abs_tol=1e-6) for c in INTENTS)
        assert alone.explanation.top_features == together[i].explanation.top_features


def test_empty_batch(triager: Triager) -> None:
    assert triager.classify([]) == []


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("@AcmeCare my order never arrived, can you check?", "en"),
        ("@AcmeCare hola, no he recibido el código de descuento", "es"),
        ("@AcmeCare okay, danke für die Info", "de"),
        ("@AcmeCare merci, je suis très content", "fr"),
        ("@AcmeCare ありがとうございます", "ja"),
        ("@AcmeCare https://t.co/abc", "und"),
        ("@AcmeCare help", "en"),
    ],
)
def test_language(triager: Triager, text: str, lang: str) -> None:
    assert one(triager, text).language == lang


def test_brand_reply_tokens() -> None:
    replies = {
        "": [],
        "Sorry to hear that! Please DM us your order number.": ["xbrdm"],
        "Could you send us a DM with the details?": ["xbrdm", "xbrask"],
        "Which device are you using?": ["xbrask"],
        "Thanks for the love!": [],
    }
    text = "sure, it's 12345"
    [plain] = model_texts([text])
    answering = model_texts([text] * len(replies), [()] * len(replies), list(replies))
    assert [t.split() for t in answering] == [[*plain.split(), *tokens] for tokens in replies.values()]


def test_brand_reply_is_used(triager: Triager) -> None:
    text = "sure, the order number is 12345"
    alone = triager.classify([Item("a", text)])[0]
    answering = triager.classify([Item("b", text, "x", (), "Please DM us your order number?")])[0]
    assert alone.scores != answering.scores


def test_loading_models_leaves_the_process_collector_alone() -> None:
    before = (gc.get_threshold(), gc.get_freeze_count())
    Triager(REPO_ROOT / "models")
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_a_serving_process_tunes_its_collector_at_startup() -> None:
    script = (
        "import gc; from parley.classifier.server import settle_process, GC_YOUNG_THRESHOLD; "
        "settle_process(); print(gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD, gc.get_freeze_count() > 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["True", "True"]
