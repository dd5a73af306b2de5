"""The intent and topic models, and `Triager`: one batched call from texts to triage decisions.

Both models are scikit-learn Pipelines: TF-IDF over word 1–2-grams of the normalised text, then a multinomial
logistic regression. The topic model reuses the intent model's fitted vectorizer, so serving transforms each
text once. Texts are normalised here, before the pipeline, so the saved artifacts hold only scikit-learn,
NumPy and SciPy types and load with skops under an explicit list of trusted types.

A message that follows earlier customer turns of its conversation gets one extra token (`xctx`): follow-ups
("done, DM sent", "still not working") are labelled differently from conversation openers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize as l2_normalize

from parley.classifier import entities as entities_mod
from parley.classifier import language as language_mod
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
    "sklearn.pipeline.Pipeline",
]

CONTEXT_TOKEN = "xctx"
# Words, and "?"/"!" as tokens of their own: punctuation carries intent in short social messages.
TOKEN_PATTERN = r"(?u)\b\w+\b|[?!]"

_URL = re.compile(r"(?:https?://|www\.)\S+")
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_HANDLE = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_DIGIT = re.compile(r"\d")
_REPEAT = re.compile(r"(\w)\1{3,}")


def normalize(text: str) -> str:
    """Lower-cased text with URLs, emails, handles and numbers replaced by placeholder tokens.

    Each substitution runs only when its cue character is present: most messages skip most of them.
    """
    # Airline tweets were re-saved with "late" → "Late Flight" and "cancel" → "Cancelled Flight" inside words.
    if "Flight" in text:
        text = text.replace("Cancelled Flight", "cancel").replace("Late Flight", "late")
    if "&" in text:
        text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = text.lower()
    if "http" in text or "www." in text:
        text = _URL.sub(" xurl ", text)
    if "@" in text:
        if "." in text:
            text = _EMAIL.sub(" xemail ", text)
        text = _HANDLE.sub(" xhandle ", text)
    if _DIGIT.search(text):
        text = _NUMBER.sub(" xnum ", text)
    return _REPEAT.sub(r"\1\1\1", text).strip()


def model_text(text: str, context: Sequence[str] = ()) -> str:
    """What the models read: the normalised text, plus the follow-up token when earlier turns exist."""
    norm = normalize(text)
    return f"{norm} {CONTEXT_TOKEN}" if context else norm


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
    # Classes are balanced through the sample weights (see train.balance), which know each source's share;
    # class_weight="balanced" would count rows and ignore those shares.
    return LogisticRegression(C=c, max_iter=3000)


def same_features(a: TfidfVectorizer, b: TfidfVectorizer) -> bool:
    """True when two fitted vectorizers compute identical features (same vocabulary and weights)."""
    return (
        a.get_params() == b.get_params() and a.vocabulary_ == b.vocabulary_ and np.array_equal(a.idf_, b.idf_)
    )


_SENTINEL = "\x00"  # never a token, so an n-gram across two messages is never in the vocabulary
_WORD_CHARS = re.compile(r"\w+")
# ASCII characters that are not word characters become spaces; "?" and "!" become tokens of their own.
_SPLIT_TABLE = {
    ord(c): " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_") and c not in "?!"
} | {ord("?"): " ? ", ord("!"): " ! "}


def tokens(text: str) -> list[str]:
    """The tokens of TOKEN_PATTERN (runs of word characters, and each "?" or "!"), without a regex scan for
    the common case: split on ASCII separators, then re-split only the rare token holding other symbols."""
    spaced = text.translate(_SPLIT_TABLE)
    out = spaced.split()
    # Only ASCII letters, digits, "?" and "!" are left in plain ASCII text without "_".
    if (spaced.isascii() and "_" not in spaced) or all(t.isalnum() or t in "?!" for t in out):
        return out
    fixed: list[str] = []
    for t in out:
        fixed.extend((t,) if t.isalnum() or t in "?!" else _WORD_CHARS.findall(t))
    return fixed


def tfidf_transform(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    """The same matrix as `vectorizer.transform(texts)` for the word 1–2-gram TF-IDF built here, faster.

    scikit-learn counts n-grams document by document in Python; here every token and bigram of the batch is
    looked up in one pass and the counting, sublinear TF, IDF weighting and L2 norm run as array operations.
    """
    get = vectorizer.vocabulary_.get
    flat: list[str] = []
    lengths: list[int] = []
    for text in texts:
        toks = tokens(text.lower())
        flat.extend(toks)
        flat.append(_SENTINEL)
        lengths.append(len(toks) + 1)
    n = len(flat)
    doc = np.repeat(np.arange(len(texts)), lengths)
    uni = np.fromiter((get(w, -1) for w in flat), dtype=np.int64, count=n)
    bi = np.fromiter(
        (get(f"{a} {b}", -1) for a, b in zip(flat, islice(flat, 1, None), strict=False)),
        dtype=np.int64,
        count=max(n - 1, 0),
    )
    ids = np.concatenate([uni, bi])
    rows = np.concatenate([doc, doc[: max(n - 1, 0)]])
    keep = ids >= 0
    x = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], ids[keep])),
        shape=(len(texts), len(vectorizer.vocabulary_)),
    )
    x.sum_duplicates()
    x.data = (np.log(x.data) + 1.0) * vectorizer.idf_[x.indices].astype(np.float32)
    l2_normalize(x, copy=False)
    return x


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
    """A loaded pipeline split into its vectorizer and its classifier, with feature names for explanations."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.features: TfidfVectorizer = pipeline.named_steps["features"]
        self.clf: LogisticRegression = pipeline.named_steps["clf"]
        self.classes = [str(c) for c in self.clf.classes_]
        names = [""] * len(self.features.vocabulary_)
        for term, j in self.features.vocabulary_.items():
            names[j] = term
        self.names = names
        self.coef = np.asarray(self.clf.coef_, dtype=np.float32)

    def top_features(self, x, chosen: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Per row of `x`, the k features that pushed hardest toward the row's chosen class (positive only).

        Vectorised over the whole batch: one product over every non-zero, one sort by (row, -contribution).
        """
        indptr, indices = x.indptr, x.indices
        counts = np.diff(indptr)
        rows = np.repeat(np.arange(x.shape[0]), counts)
        contrib = x.data * self.coef[chosen[rows], indices]
        order = np.lexsort((-contrib, rows))
        top_idx = indices[order].tolist()
        top_val = contrib[order].tolist()
        names = self.names
        out = []
        for start, end in zip(indptr[:-1].tolist(), indptr[1:].tolist(), strict=True):
            stop = min(end, start + k)
            out.append([(names[top_idx[j]], top_val[j]) for j in range(start, stop) if top_val[j] > 0])
        return out


class Triager:
    """Intent, topic, urgency, entities and the bot's answer for batches of messages.

    Loads the artifacts once; `classify` makes one transform and one predict_proba call per model per batch,
    and runs the urgency rules, entity patterns and knowledge base only on the messages that need them.
    """

    def __init__(self, models_dir: Path, top_k: int = 5) -> None:
        self.models_dir = Path(models_dir)
        self.intent = _Model(load_pipeline(self.models_dir / "intent.skops"))
        self.topic = _Model(load_pipeline(self.models_dir / "topic.skops"))
        # The bot compares messages and paraphrases in the intent model's TF-IDF space.
        self.knowledge = KnowledgeBase.from_yaml(
            self.models_dir / "knowledge_base.yaml",
            lambda texts: tfidf_transform(self.intent.features, [model_text(t) for t in texts]),
        )
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
        self._intent_cols = [self.intent.classes.index(c) for c in INTENTS]

    def probabilities(self, items: Sequence[Item]):
        """(intent features, intent probabilities in INTENTS order, topic probabilities) for a batch."""
        texts = [model_text(item.text, item.context) for item in items]
        x_intent = tfidf_transform(self.intent.features, texts)
        p_intent = self.intent.clf.predict_proba(x_intent)[:, self._intent_cols]
        x_topic = x_intent if self.shared_features else tfidf_transform(self.topic.features, texts)
        return x_intent, p_intent, self.topic.clf.predict_proba(x_topic)

    def classify(self, items: Sequence[Item]) -> list[Triage]:
        if not items:
            return []
        x_intent, p_intent, p_topic = self.probabilities(items)
        chosen = p_intent.argmax(axis=1)
        model_intents = [INTENTS[c] for c in chosen.tolist()]
        hits = [rules.urgency(item.text) for item in items]
        finals = [rules.raise_intent(m, h) for m, h in zip(model_intents, hits, strict=True)]
        topic_idx = p_topic.argmax(axis=1)
        topics = [self.topic.classes[t] for t in topic_idx.tolist()]
        topic_conf = p_topic[np.arange(len(items)), topic_idx].tolist()
        answers = self.knowledge.answer_many(
            [item.text for item in items], finals, [item.channel for item in items], topics, x_intent
        )
        # Explanations use the coefficient row of the chosen class, in the classifier's own class order.
        coef_rows = np.asarray(self._intent_cols)[chosen]
        features = self.intent.top_features(x_intent, coef_rows, self.top_k)
        out = []
        for i, (item, row) in enumerate(zip(items, p_intent.tolist(), strict=True)):
            hit = hits[i]
            out.append(
                Triage(
                    message_id=item.message_id,
                    intent=finals[i],
                    scores=dict(zip(INTENTS, row, strict=True)),
                    topic=topics[i],
                    topic_confidence=topic_conf[i],
                    urgency_reasons=[h.reason() for h in hit] if hit else [],
                    entities=entities_mod.extract(item.text),
                    explanation=Explanation(self.version, features[i], [h.rule for h in hit] if hit else []),
                    bot_answer=answers[i],
                    model_intent=model_intents[i],
                    language=language_mod.detect(item.text),
                )
            )
        return out

    def answer(self, text: str, channel: str = "") -> BotAnswer:
        """The bot's answer for one message, judged with the same intent model and rules as `classify`."""
        return self.classify([Item("", text, channel)])[0].bot_answer
