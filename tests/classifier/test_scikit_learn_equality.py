"""Serving's fast path gives what scikit-learn gives: the batched TF-IDF is `vectorizer.transform`, and the
probabilities `Triager.classify` reports are `Pipeline.predict_proba` of the saved pipelines on the same
model texts, within 1e-9 (in practice identical).

The texts: the team's training examples, the knowledge base's questions, the demo conversations, tricky
and random texts, and, when the public data folder is next to the repository, 600 real tweets from it.
"""

from __future__ import annotations

import ast
import csv
import random

import numpy as np
import pytest
import yaml

from parley.classifier.model import INTENTS, Item, Triager, load_pipeline
from parley.classifier.text import model_texts, normalize_many, tokens_many
from parley.classifier.tfidf import Tfidf
from parley.config import REPO_ROOT

MODELS = REPO_ROOT / "models"
TWCS = REPO_ROOT.parent / "shared" / "data" / "twcs" / "twcs_head5000.csv"
AIRLINE = REPO_ROOT.parent / "shared" / "data" / "airline_sentiment" / "Tweets.csv"


def repository_texts() -> list[str]:
    examples = yaml.safe_load((MODELS / "examples.yaml").read_text(encoding="utf-8"))
    texts = [t for by_topic in examples.values() for ts in by_topic.values() for t in ts]
    kb = yaml.safe_load((MODELS / "knowledge_base.yaml").read_text(encoding="utf-8"))
    texts += [q for answer in kb["answers"] for q in answer["questions"]]
    with (REPO_ROOT / "services" / "parley" / "demo" / "demo_conversations.csv").open(encoding="utf-8") as f:
        texts += [r["text"] for r in csv.DictReader(f)]
    rng = random.Random(11)
    pieces = ["@AcmeCare ", "order #", "12345", "??", "!!", "soooo ", "https://t.co/x ", "é", "日本", " "]
    texts += ["", " ", "?!", "zzzz qqqq"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(100)]
    return texts


def public_texts() -> list[str]:
    texts: list[str] = []
    for path, keep in ((TWCS, lambda r: r["inbound"] == "True"), (AIRLINE, lambda r: True)):
        if path.exists():
            with path.open(newline="", encoding="utf-8") as f:
                texts += [r["text"] for r in csv.DictReader(f) if keep(r)][:300]
    return texts


def as_items(texts: list[str]) -> list[Item]:
    """Every third message follows earlier turns; every other one answers a brand message."""
    replies = ["", "Please DM us your order number?", "Thanks for reaching out!"]
    return [
        Item(str(i), t, "x", ("earlier turn",) if i % 3 == 0 else (), replies[i % 3] if i % 2 else "")
        for i, t in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def triager() -> Triager:
    return Triager(MODELS)


@pytest.mark.parametrize("source", ["repository", "public data"])
def test_classify_reports_scikit_learns_probabilities(triager: Triager, source: str) -> None:
    texts = repository_texts() if source == "repository" else public_texts()
    if not texts:
        pytest.skip(f"no public data folder at {TWCS.parents[1]}")
    assert len(texts) >= 300
    items = as_items(texts)
    model_input = model_texts(
        [i.text for i in items], [i.context for i in items], [i.brand_reply for i in items]
    )
    intent = load_pipeline(MODELS / "intent.skops")
    topic = load_pipeline(MODELS / "topic.skops")
    expected_intent = intent.predict_proba(model_input)
    expected_topic = topic.predict_proba(model_input)
    decided = triager.classify(items)
    columns = [list(intent.classes_).index(c) for c in INTENTS]
    reported = np.array([[t.scores[c] for c in INTENTS] for t in decided])
    assert np.abs(reported - expected_intent[:, columns]).max() <= 1e-9
    assert [t.model_intent for t in decided] == [INTENTS[j] for j in reported.argmax(axis=1)]
    confidences = np.array([t.topic_confidence for t in decided])
    assert np.abs(confidences - expected_topic.max(axis=1)).max() <= 1e-9
    assert [t.topic for t in decided] == list(topic.classes_[expected_topic.argmax(axis=1)])
    _, p_intent, p_topic = triager.probabilities(items)
    assert np.abs(p_intent - expected_intent[:, columns]).max() <= 1e-9
    assert np.abs(p_topic - expected_topic).max() <= 1e-9


def test_batched_tfidf_is_the_vectorizers_matrix(triager: Triager) -> None:
    texts = repository_texts() + public_texts()
    items = as_items(texts)
    model_input = model_texts(
        [i.text for i in items], [i.context for i in items], [i.brand_reply for i in items]
    )
    features = triager.intent.features
    ours = Tfidf(features).transform(tokens_many(model_input))
    theirs = features.transform(model_input)
    assert ours.shape == theirs.shape
    assert (ours != theirs).nnz == 0
    # The serving path, from the normalised texts' tokens, gives the same matrix.
    x, _, _ = triager.probabilities(items)
    assert (x != theirs).nnz == 0
    assert np.array_equal(ours.indptr, theirs.indptr)


def test_the_batched_tfidf_refuses_a_vectorizer_it_does_not_compute() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 3)).fit(["alpha beta gamma", "beta gamma delta"])
    with pytest.raises(ValueError, match="ngram_range"):
        Tfidf(vectorizer)


# scikit-learn's documented estimators and functions that serving may import; nothing from sklearn.utils or
# a private (underscored) module, which change without notice between releases.
PUBLIC_SKLEARN = (
    "sklearn.feature_extraction.text.",
    "sklearn.linear_model.",
    "sklearn.pipeline.",
    "sklearn.preprocessing.",
)


def test_serving_imports_only_public_scikit_learn() -> None:
    serving = [
        p
        for p in (REPO_ROOT / "services" / "parley" / "classifier").rglob("*.py")
        if "training" not in p.parts
    ]
    imported = []
    for path in serving:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported += [(path.name, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported += [(path.name, f"{node.module}.{a.name}") for a in node.names]
    sklearn = [(f, n) for f, n in imported if n.startswith("sklearn")]
    assert sklearn, "the check found no scikit-learn import at all"
    not_public = [
        (f, n)
        for f, n in sklearn
        if not n.startswith(PUBLIC_SKLEARN) or any(part.startswith("_") for part in n.split("."))
    ]
    assert not_public == []
    scipy_private = [(f, n) for f, n in imported if n.startswith("scipy") and "._" in n]
    assert scipy_private == []


def test_normalised_texts_tokenise_as_the_vectorizer_reads_them(triager: Triager) -> None:
    """The serving path tokenises the normalised text as it is; the vectorizer lower-cases first."""
    texts = repository_texts() + public_texts()
    normalized = normalize_many(texts)
    assert normalized == [t.lower() for t in normalized]
