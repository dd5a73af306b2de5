"""The intent and topic models, and `Triager`: one batched call from texts to triage decisions.

Both models are scikit-learn Pipelines (TF-IDF word 1–2-grams + char 2–5-grams, then a multinomial logistic
regression whose probabilities are calibrated enough to threshold on). Texts are normalised here, before the
pipeline, so the saved artifacts hold only scikit-learn, NumPy and SciPy types and load with skops under an
explicit list of trusted types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from parley.classifier import entities as entities_mod
from parley.classifier import rules
from parley.classifier.knowledge import BotAnswer, KnowledgeBase

INTENTS = ("praise", "question", "complaint", "urgent", "other")
TOPICS = ("billing", "orders_delivery", "account_access", "technical", "travel", "general")

# Every type the saved pipelines may contain; skops refuses to load anything else.
TRUSTED_TYPES = [
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "numpy.dtype",
    "numpy.float32",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "numpy.core.multiarray._reconstruct",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
]

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_HANDLE = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_REPEAT = re.compile(r"(\w)\1{3,}")
_SPACE = re.compile(r"\s+")
# Airline tweets were re-saved with "late" → "Late Flight" and "cancel" → "Cancelled Flight" inside words.
_ARTIFACTS = (("Cancelled Flight", "cancel"), ("Late Flight", "late"))


def normalize(text: str) -> str:
    """Lower-cased text with URLs, emails, handles and numbers replaced by placeholder tokens."""
    for bad, good in _ARTIFACTS:
        if bad in text:
            text = text.replace(bad, good)
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = _URL.sub(" xurl ", text)
    text = _EMAIL.sub(" xemail ", text)
    text = _HANDLE.sub(" xhandle ", text)
    text = _NUMBER.sub(" xnum ", text)
    text = _REPEAT.sub(r"\1\1\1", text.lower())
    return _SPACE.sub(" ", text).strip()


def build_pipeline(max_word: int = 20_000, max_char: int = 40_000, c: float = 4.0) -> Pipeline:
    """The untrained pipeline shared by the intent and topic models."""
    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    ngram_range=(1, 2), min_df=2, max_features=max_word, sublinear_tf=True, dtype=np.float32
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    min_df=3,
                    max_features=max_char,
                    sublinear_tf=True,
                    dtype=np.float32,
                ),
            ),
        ]
    )
    return Pipeline([("features", features), ("clf", build_classifier(c))])


def build_classifier(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000, class_weight="balanced")


def same_features(a: FeatureUnion, b: FeatureUnion) -> bool:
    """True when two fitted feature unions compute identical features (same vocabularies and weights)."""
    pairs = zip(a.transformer_list, b.transformer_list, strict=False)
    return len(a.transformer_list) == len(b.transformer_list) and all(
        na == nb
        and va.get_params() == vb.get_params()
        and va.vocabulary_ == vb.vocabulary_
        and np.array_equal(va.idf_, vb.idf_)
        for (na, va), (nb, vb) in pairs
    )


def load_pipeline(path: Path) -> Pipeline:
    """Load a pipeline saved by training, trusting only the listed types."""
    import skops.io as sio

    return sio.load(path, trusted=TRUSTED_TYPES)


@dataclass(frozen=True, slots=True)
class Explanation:
    model_version: str
    top_features: list[tuple[str, float]]
    rules_fired: list[str]


@dataclass(frozen=True, slots=True)
class Triage:
    message_id: str
    intent: str
    scores: dict[str, float]
    topic: str
    topic_confidence: float
    urgency_reasons: list[str]
    entities: list[entities_mod.Entity]
    explanation: Explanation
    bot_answer: BotAnswer
    model_intent: str
    language: str = "en"


@dataclass(frozen=True, slots=True)
class Item:
    """One message to classify; `channel` is a channel name ("x", "whatsapp", ...) or "" when unknown."""

    message_id: str
    text: str
    channel: str = ""
    context: tuple[str, ...] = field(default=())


class _Model:
    """A loaded pipeline split into its features and its classifier, with feature names for explanations."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.features = pipeline.named_steps["features"]
        self.clf = pipeline.named_steps["clf"]
        self.classes = [str(c) for c in self.clf.classes_]
        self.names = np.asarray(self.features.get_feature_names_out(), dtype=object)
        self.coef = np.asarray(self.clf.coef_)

    def top_features(self, row_data: np.ndarray, row_indices: np.ndarray, k: int, cls: int) -> list:
        contrib = row_data * self.coef[cls, row_indices]
        if contrib.size == 0:
            return []
        order = np.argsort(-contrib)[:k]
        return [(str(self.names[row_indices[j]]), float(contrib[j])) for j in order if contrib[j] > 0]


class Triager:
    """Intent, topic, urgency, entities and the bot's answer for batches of messages.

    Loads the artifacts once; `classify` makes one predict_proba call per model per batch.
    """

    def __init__(self, models_dir: Path, top_k: int = 5) -> None:
        self.models_dir = Path(models_dir)
        self.intent = _Model(load_pipeline(self.models_dir / "intent.skops"))
        self.topic = _Model(load_pipeline(self.models_dir / "topic.skops"))
        self.knowledge = KnowledgeBase.from_yaml(self.models_dir / "knowledge_base.yaml")
        metrics_path = self.models_dir / "metrics.json"
        self.metrics: dict = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        self.version = str(self.metrics.get("model_version", "unversioned"))
        self.top_k = top_k
        # Training fits the topic classifier on the intent model's features; then one transform serves both.
        self.shared_features = same_features(self.intent.features, self.topic.features)
        missing = set(INTENTS) - set(self.intent.classes)
        if missing:
            raise ValueError(f"intent model lacks classes {sorted(missing)}")
        # Scores are reported in the canonical intent order, whatever order the classifier learned.
        self._intent_col = {c: self.intent.classes.index(c) for c in INTENTS}

    def classify(self, items: Sequence[Item]) -> list[Triage]:
        if not items:
            return []
        texts = [normalize(item.text) for item in items]
        x_intent = self.intent.features.transform(texts).tocsr()
        p_intent = self.intent.clf.predict_proba(x_intent)
        x_topic = x_intent if self.shared_features else self.topic.features.transform(texts)
        p_topic = self.topic.clf.predict_proba(x_topic)
        hits = [rules.urgency(item.text) for item in items]
        chosen = p_intent.argmax(axis=1)
        model_intents = [self.intent.classes[c] for c in chosen]
        finals = [rules.raise_intent(m, h) for m, h in zip(model_intents, hits, strict=True)]
        topic_idx = p_topic.argmax(axis=1)
        topics = [self.topic.classes[t] for t in topic_idx]
        answers = self.knowledge.answer_many(
            [item.text for item in items], finals, [item.channel for item in items], topics
        )
        out = []
        indptr, indices, data = x_intent.indptr, x_intent.indices, x_intent.data
        for i, item in enumerate(items):
            row = slice(indptr[i], indptr[i + 1])
            features = self.intent.top_features(data[row], indices[row], self.top_k, chosen[i])
            out.append(
                Triage(
                    message_id=item.message_id,
                    intent=finals[i],
                    scores={c: float(p_intent[i, self._intent_col[c]]) for c in INTENTS},
                    topic=topics[i],
                    topic_confidence=float(p_topic[i, topic_idx[i]]),
                    urgency_reasons=[h.reason() for h in hits[i]],
                    entities=entities_mod.extract(item.text),
                    explanation=Explanation(self.version, features, [h.rule for h in hits[i]]),
                    bot_answer=answers[i],
                    model_intent=model_intents[i],
                )
            )
        return out

    def answer(self, text: str, channel: str = "") -> BotAnswer:
        """The bot's answer for one message, judged with the same intent model and rules as `classify`."""
        return self.classify([Item("", text, channel)])[0].bot_answer
