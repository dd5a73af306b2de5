"""The intent and topic models, and `Triager`: one batched call from texts to triage decisions.

Both models are scikit-learn Pipelines: TF-IDF over word 1–2-grams of the normalised text, then a multinomial
logistic regression. The topic model reuses the intent model's fitted vectorizer, so serving transforms each
text once. Texts are normalised here, before the pipeline, so the saved artifacts hold only scikit-learn,
NumPy and SciPy types and load with skops under an explicit list of trusted types.

A message that follows earlier customer turns of its conversation gets one extra token (`xctx`): follow-ups
("done, DM sent", "still not working") are labelled differently from conversation openers. A message that
answers a brand's message gets a token for each thing that message asked for (a DM, details): "sure, it's
12345" after "please DM us your order number" supplies details.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
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


def _glued_at(text: str) -> bool:
    """True when some "@" follows a non-space character."""
    i = text.find("@", 1)
    while i > 0:
        if not text[i - 1].isspace():
            return True
        i = text.find("@", i + 1)
    return False


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
        # An email needs a non-space right before its "@"; a handle has a space or nothing there.
        if "." in text and _glued_at(text):
            text = _EMAIL.sub(" xemail ", text)
        text = _HANDLE.sub(" xhandle ", text)
    if _DIGIT.search(text):
        text = _NUMBER.sub(" xnum ", text)
    return _REPEAT.sub(r"\1\1\1", text).strip()


# What the brand's message being answered asked for, as tokens of their own (neither is an English word).
# Tokens for apologies, a closing "glad to help" and for the mere presence of a brand message were tried too
# and made the hand-labelled evaluation worse (see the model card).
_BRAND_ACTS = (
    (
        "xbrdm",
        re.compile(r"\b(?:dms?|direct message|private message|message us|inbox|reach out|send us a note)\b"),
    ),
    (
        "xbrask",
        re.compile(
            r"\?|\b(?:could you|can you|please (?:send|share|provide|confirm|let us know|tell|check|try)"
            r"|let us know|what|which|when did|are you|have you|did you|do you)\b"
        ),
    ),
)


def brand_tokens(brand_reply: str) -> str:
    """Tokens for what the brand's message asked for ("" when it asked for nothing or there is none)."""
    if not brand_reply.strip():
        return ""
    lower = brand_reply.lower()
    return " ".join(token for token, pattern in _BRAND_ACTS if pattern.search(lower))


def model_text(text: str, context: Sequence[str] = (), brand_reply: str = "") -> str:
    """What the models read: the normalised text, plus the follow-up token when earlier turns exist and the
    tokens describing the brand message it answers."""
    norm = normalize(text)
    if context:
        norm = f"{norm} {CONTEXT_TOKEN}"
    if brand_reply:
        extra = brand_tokens(brand_reply)
        if extra:
            norm = f"{norm} {extra}"
    return norm


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


_SENTINEL = "\x00"  # never a token
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


@dataclass(frozen=True, slots=True)
class _Lookup:
    """A fitted vectorizer's vocabulary as arrays: bigrams are found by binary search on a pair of word ids
    instead of building and hashing a string per pair of tokens."""

    # Every word of the vocabulary, then words that occur only inside bigrams (ids from n_features up).
    words: dict[str, int]
    n_features: int
    width: int
    keys: np.ndarray  # sorted word-id pair keys (first * width + second) of every bigram
    ids: np.ndarray  # the bigram's feature index, aligned with keys


_LOOKUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _lookup(vectorizer: TfidfVectorizer) -> _Lookup:
    found = _LOOKUPS.get(vectorizer)
    if found is not None:
        return found
    vocabulary = vectorizer.vocabulary_
    words = {t: int(j) for t, j in vocabulary.items() if " " not in t}
    n_features = len(vocabulary)
    pairs = [(t.split(" "), int(j)) for t, j in vocabulary.items() if " " in t]
    for (a, b), _ in pairs:
        for w in (a, b):
            if w not in words:
                words[w] = n_features + len(words)
    width = n_features + len(words)
    keys = np.array([words[a] * width + words[b] for (a, b), _ in pairs], dtype=np.int64)
    order = np.argsort(keys)
    ids = np.array([j for _, j in pairs], dtype=np.int64)
    found = _Lookup(words, n_features, width, keys[order], ids[order])
    _LOOKUPS[vectorizer] = found
    return found


def tfidf_transform(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    """The same matrix as `vectorizer.transform(texts)` for the word 1–2-gram TF-IDF built here, faster.

    scikit-learn counts n-grams document by document in Python; here every token of the batch is looked up
    in one pass, bigrams are found by a vectorised binary search, and the counting, sublinear TF, IDF
    weighting and L2 norm run as array operations.
    """
    lookup = _lookup(vectorizer)
    get = lookup.words.get
    flat: list[str] = []
    lengths: list[int] = []
    for text in texts:
        toks = tokens(text.lower())
        flat.extend(toks)
        flat.append(_SENTINEL)  # never a word: no bigram spans two messages
        lengths.append(len(toks) + 1)
    n = len(flat)
    doc = np.repeat(np.arange(len(texts)), lengths)
    word = np.fromiter((get(w, -1) for w in flat), dtype=np.int64, count=n)
    first, second = word[:-1], word[1:]
    pos = np.flatnonzero((first >= 0) & (second >= 0))
    keys = first[pos] * lookup.width + second[pos]
    at = np.minimum(np.searchsorted(lookup.keys, keys), max(len(lookup.keys) - 1, 0))
    hit = lookup.keys[at] == keys if len(lookup.keys) else np.zeros(len(keys), dtype=bool)
    uni = (word >= 0) & (word < lookup.n_features)
    ids = np.concatenate([word[uni], lookup.ids[at[hit]]])
    rows = np.concatenate([doc[uni], doc[pos[hit]]])
    x = sp.csr_matrix(
        (np.ones(len(ids), dtype=np.float32), (rows, ids)),
        shape=(len(texts), lookup.n_features),
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
    # The brand's message this one replies to, when the parent is a brand message.
    brand_reply: str = ""


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

        Vectorised over the whole batch: one product over every non-zero, one sort by (row, -contribution),
        then only the first k positive contributions of each row become Python objects.
        """
        indptr, indices = x.indptr, x.indices
        counts = np.diff(indptr)
        rows = np.repeat(np.arange(x.shape[0]), counts)
        contrib = x.data * self.coef[chosen[rows], indices]
        order = np.lexsort((-contrib, rows))
        rank = np.arange(len(order)) - indptr[rows[order]]
        keep = order[(rank < k) & (contrib[order] > 0)]
        names = self.names
        pairs = [(names[j], v) for j, v in zip(indices[keep].tolist(), contrib[keep].tolist(), strict=True)]
        kept_per_row = np.bincount(rows[keep], minlength=x.shape[0]).tolist()
        out = []
        start = 0
        for n in kept_per_row:
            out.append(pairs[start : start + n])
            start += n
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
        texts = [model_text(item.text, item.context, item.brand_reply) for item in items]
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
