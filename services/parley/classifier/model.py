"""The intent and topic models, and `Triager`: one batched call from messages to triage decisions.

Both models are scikit-learn Pipelines: TF-IDF over word 1–2-grams of the normalised text, then a multinomial
logistic regression. The topic model reuses the intent model's fitted vectorizer, so serving transforms each
text once. Texts are normalised before the pipeline (`text.model_texts`), so the saved artifacts hold only
scikit-learn, NumPy and SciPy types and load with skops under an explicit list of trusted types.

Serving computes the pipelines' output without calling them: the TF-IDF matrix from the batch's tokens
(`tfidf.Tfidf`) and the probabilities as the classifier's product, intercept and softmax. Both give what
`Pipeline.predict_proba` gives on the same texts (tests/classifier/test_scikit_learn_equality.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from parley.classifier import entities as entities_mod
from parley.classifier import manifest, review, rules
from parley.classifier.knowledge import BotAnswer, KnowledgeBase, KnowledgeSource
from parley.classifier.labels import INTENTS as INTENTS
from parley.classifier.labels import TOPICS as TOPICS
from parley.classifier.text import (
    TOKEN_PATTERN,
    languages_of,
    model_tokens,
    normalize_many,
    tokens_many,
)
from parley.classifier.tfidf import Tfidf


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# Every type the saved pipelines may contain; skops refuses to load anything else. The scikit-learn and SciPy
# types are named by their classes, wherever those libraries define them.
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
    *map(_type_name, (sp.csr_matrix, TfidfTransformer, TfidfVectorizer, LogisticRegression, Pipeline)),
]


def build_vectorizer(min_df: int = 2) -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=min_df,
        sublinear_tf=True,
        token_pattern=TOKEN_PATTERN,
        dtype=np.float32,
    )


def build_pipeline(c: float = 4.0, min_df: int = 2) -> Pipeline:
    """The untrained intent pipeline; the topic model reuses its fitted vectorizer."""
    return Pipeline([("features", build_vectorizer(min_df)), ("clf", build_classifier(c))])


def build_classifier(c: float) -> LogisticRegression:
    # Classes are balanced through the sample weights (see training.fitting.balance), which know each
    # source's share; class_weight="balanced" would count rows and ignore those shares.
    return LogisticRegression(C=c, max_iter=3000)


def same_features(a: TfidfVectorizer, b: TfidfVectorizer) -> bool:
    """True when two fitted vectorizers compute identical features (same vocabulary and weights)."""
    return bool(
        a.get_params() == b.get_params() and a.vocabulary_ == b.vocabulary_ and np.array_equal(a.idf_, b.idf_)
    )


def load_pipeline(path: Path) -> Pipeline:
    """Load a pipeline saved by training, trusting only the listed types."""
    import skops.io as sio

    return sio.load(path, trusted=TRUSTED_TYPES)


# Results are plain slotted records, not frozen ones, for the same reason as entities.Entity: classify makes
# one of each per message, and a frozen dataclass's __init__ costs twice as much.
@dataclass(slots=True)
class Explanation:
    model_version: str
    top_features: list[tuple[str, float]]
    rules_fired: list[str]


@dataclass(slots=True)
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
    urgent_review: bool = False
    review_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Item:
    """One message to classify; `channel` is a channel name ("x", "whatsapp", ...) or "" when unknown."""

    message_id: str
    text: str
    channel: str = ""
    context: tuple[str, ...] = field(default=())
    # The brand's message this one replies to, when the parent is a brand message.
    brand_reply: str = ""


class Model:
    """A loaded pipeline: its vectorizer as a batched TF-IDF, its classifier's coefficients, and feature names
    for explanations."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.features: TfidfVectorizer = pipeline.named_steps["features"]
        self.clf: LogisticRegression = pipeline.named_steps["clf"]
        self.classes = [str(c) for c in self.clf.classes_]
        if len(self.classes) < 3:
            raise ValueError("a model with fewer than three classes is not multinomial")
        self.tfidf = Tfidf(self.features)
        names = [""] * len(self.features.vocabulary_)
        for term, j in self.features.vocabulary_.items():
            names[j] = term
        # A tuple holds only strings, so the garbage collector stops re-scanning it.
        self.names = tuple(names)
        self.coef = np.asarray(self.clf.coef_, dtype=np.float32)
        self._coef_t = self.clf.coef_.T
        self._intercept = self.clf.intercept_

    def proba(self, x: sp.csr_matrix) -> np.ndarray:
        """`clf.predict_proba(x)` for CSR features, without its input validation (about a millisecond per
        call): the same product, intercept and softmax, operation for operation, as its multinomial branch."""
        scores = np.asarray(x @ self._coef_t) + self._intercept
        scores -= scores.max(axis=1).reshape(-1, 1)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1).reshape(-1, 1)
        probabilities: np.ndarray = scores
        return probabilities

    def top_features(self, x: sp.csr_matrix, chosen: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Per row of `x`, the k features that pushed hardest toward the row's chosen class (positive only).

        Vectorised over the whole batch: one product over every non-zero, one sort of the positive
        contributions by (row, -contribution), then only the first k of each row become Python objects.
        """
        n_rows = x.shape[0]
        rows = np.repeat(np.arange(n_rows), np.diff(x.indptr))
        contrib = x.data * self.coef[chosen[rows], x.indices]
        positive = np.flatnonzero(contrib > 0)
        value = contrib[positive]
        # The bits of a positive float32, read as an integer, grow with its value: one stable sort of integer
        # keys orders by row, then by contribution, largest first (ties keep their column order).
        key = (rows[positive].astype(np.int64) << 32) - value.view(np.int32)
        order = np.argsort(key, kind="stable")
        sorted_rows = rows[positive[order]]
        per_row = np.bincount(sorted_rows, minlength=n_rows)
        rank = np.arange(len(order)) - (np.cumsum(per_row) - per_row)[sorted_rows]
        keep = order[rank < k]
        names = self.names
        columns = x.indices[positive[keep]].tolist()
        pairs = [(names[j], v) for j, v in zip(columns, value[keep].tolist(), strict=True)]
        out = []
        start = 0
        for n in np.minimum(per_row, k).tolist():
            out.append(pairs[start : start + n])
            start += n
        return out


class Triager:
    """Intent, topic, urgency, entities and the bot's answer for batches of messages.

    Loads the artifacts once; `classify` makes one transform and one probability product per model per batch,
    and runs the urgency rules, entity patterns and knowledge base only on the messages that need them.
    Constructing one changes nothing outside it (a server tunes its process once the models are loaded: see
    `parley.classifier.server.settle_process`).
    """

    def __init__(
        self,
        models_dir: Path,
        top_k: int = 5,
        urgent_threshold: float | None = None,
        review_file: Path | None = None,
        knowledge_base: Path | None = None,
        bot_min_confidence: float | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        # Nothing is opened before every artifact matches its SHA-256 in the manifest.
        manifest.verify(self.models_dir)
        self.intent = Model(load_pipeline(self.models_dir / "intent.skops"))
        self.topic = Model(load_pipeline(self.models_dir / "topic.skops"))
        # A knowledge base that retrieves by cosine compares messages and paraphrases in the intent model's
        # TF-IDF space; one with a classifier head has its own features.
        self.knowledge_source = KnowledgeSource(
            Path(knowledge_base or self.models_dir / "knowledge_base.yaml"),
            lambda texts: self.intent.tfidf.transform(tokens_many(normalize_many(texts))),
            bot_min_confidence,
            models_dir=self.models_dir,
        )
        metrics_path = self.models_dir / "metrics.json"
        self.metrics: dict[str, Any] = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        self.version = str(self.metrics.get("model_version", "unversioned"))
        # The urgent-review operating point: from settings, else the one training chose on held-out labels.
        chosen = self.metrics.get("urgent_review", {}).get("threshold", review.DEFAULT_THRESHOLD)
        self.urgent_threshold = float(chosen if urgent_threshold is None else urgent_threshold)
        self.review_cues = review.ReviewCues.load(review_file or self.models_dir / "urgent_review.yaml")
        self.top_k = top_k
        # Training fits the topic classifier on the intent model's features; then one transform serves both.
        self.shared_features = same_features(self.intent.features, self.topic.features)
        missing = set(INTENTS) - set(self.intent.classes)
        if missing:
            raise ValueError(f"intent model lacks classes {sorted(missing)}")
        # Scores are reported in the canonical intent order, whatever order the classifier learned.
        self._intent_cols = [self.intent.classes.index(c) for c in INTENTS]
        rules.compile_prefilter()

    @property
    def knowledge(self) -> KnowledgeBase:
        return self.knowledge_source.current()

    def probabilities(
        self, items: Sequence[Item], normalized_tokens: Sequence[list[str]] | None = None
    ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """(intent features, intent probabilities in INTENTS order, topic probabilities) for a batch, from the
        tokens of each item's normalised text when the caller has them."""
        if normalized_tokens is None:
            normalized_tokens = tokens_many(normalize_many([item.text for item in items]))
        tokens = model_tokens(
            normalized_tokens, [item.context for item in items], [item.brand_reply for item in items]
        )
        x_intent = self.intent.tfidf.transform(tokens)
        p_intent = self.intent.proba(x_intent)[:, self._intent_cols]
        x_topic = x_intent if self.shared_features else self.topic.tfidf.transform(tokens)
        return x_intent, p_intent, self.topic.proba(x_topic)

    def classify(self, items: Sequence[Item]) -> list[Triage]:
        if not items:
            return []
        texts = [item.text for item in items]
        normalized = normalize_many(texts)
        normalized_tokens = tokens_many(normalized)
        languages = languages_of(texts, normalized, normalized_tokens)
        x_intent, p_intent, p_topic = self.probabilities(items, normalized_tokens)
        # Dropped now rather than at return: the fewer objects stay alive while a batch is classified, the
        # less work for the garbage collector.
        del normalized_tokens
        chosen = p_intent.argmax(axis=1)
        model_intents = [INTENTS[c] for c in chosen.tolist()]
        # None, not an empty list, for the many messages no rule fires on (again fewer live objects).
        hits = [hit or None for hit in rules.urgency_many(texts)]
        finals = [rules.raise_intent(m, hit or []) for m, hit in zip(model_intents, hits, strict=True)]
        topic_idx = p_topic.argmax(axis=1)
        topics = [self.topic.classes[t] for t in topic_idx.tolist()]
        topic_confidences = p_topic[np.arange(len(items)), topic_idx].tolist()
        flags, review_reasons = review.flag_many(
            self.review_cues,
            texts,
            [item.context for item in items],
            finals,
            p_intent[:, INTENTS.index("urgent")],
            self.urgent_threshold,
        )
        # A message that may be urgent goes to a person, never to the bot, whatever its top intent.
        answers = self.knowledge.answer_many(
            texts,
            [f if not flag else "urgent" for f, flag in zip(finals, flags, strict=True)],
            [item.channel for item in items],
            topics,
            x_intent,
        )
        # Explanations use the coefficient row of the chosen class, in the classifier's own class order.
        coef_rows = np.asarray(self._intent_cols)[chosen]
        features = self.intent.top_features(x_intent, coef_rows, self.top_k)
        found = entities_mod.extract_many(texts)
        version = self.version
        # Arguments by position, in the order of Triage's fields: by keyword they cost over a microsecond more
        # per message.
        return [
            Triage(
                item.message_id,
                final,  # intent
                dict(zip(INTENTS, row, strict=True)),  # scores
                topic,
                confidence,  # topic_confidence
                [h.reason() for h in hit] if hit else [],  # urgency_reasons
                entities,
                Explanation(version, top, [h.rule for h in hit] if hit else []),
                answer,  # bot_answer
                model_intent,
                lang,  # language
                flag,  # urgent_review
                why,  # review_reasons
            )
            for (
                item,
                final,
                row,
                topic,
                confidence,
                hit,
                entities,
                top,
                answer,
                model_intent,
                lang,
                flag,
                why,
            ) in zip(
                items,
                finals,
                p_intent.tolist(),
                topics,
                topic_confidences,
                hits,
                found,
                features,
                answers,
                model_intents,
                languages,
                flags,
                review_reasons,
                strict=True,
            )
        ]

    def answer(self, text: str, channel: str = "") -> BotAnswer:
        """The bot's answer for one message, judged with the same intent model and rules as `classify`."""
        return self.classify([Item("", text, channel)])[0].bot_answer
