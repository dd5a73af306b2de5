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

import gc
import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils.extmath import softmax
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from parley.classifier import batch, manifest, rules
from parley.classifier import entities as entities_mod
from parley.classifier import language as language_mod
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
    text = _placeholders(text)
    if _DIGIT.search(text):
        text = _NUMBER.sub(" xnum ", text)
    return _REPEAT.sub(r"\1\1\1", text).strip()


def normalize_many(texts: Sequence[str]) -> list[str]:
    """`[normalize(t) for t in texts]`, faster: the scans for digits and for repeated characters, the two
    substitutions no cue character can skip, run once over the whole batch in NumPy, and each substitution
    only on the messages where its scan finds something."""
    out = [_placeholders(t) for t in texts]
    # Replacing numbers by " xnum " neither makes nor joins runs of word characters: the runs can be looked
    # for before it.
    with_digits, with_runs = _with_digits_and_runs(out)
    for i in with_digits:
        out[i] = _NUMBER.sub(" xnum ", out[i])
    for i in with_runs:
        out[i] = _REPEAT.sub(r"\1\1\1", out[i])
    return [t.strip() for t in out]


def _with_digits_and_runs(texts: list[str]) -> tuple[list[int], list[int]]:
    """Indices of the texts holding a digit (`\\d`), and of those holding some character four times in a
    row (all that `_REPEAT` can match)."""
    codes = batch.code_points("".join(texts))
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    decimals = [c for c in np.unique(codes[codes >= 128]).tolist() if chr(c).isdecimal()]
    if decimals:
        digit |= np.isin(codes, decimals)
    same_as_next = codes[1:] == codes[:-1]
    run_starts = np.flatnonzero(same_as_next[:-2] & same_as_next[1:-1] & same_as_next[2:])
    # A run that straddles two texts also marks the first one: harmless, the substitution changes nothing.
    ends = batch.ends(texts, 0)
    return (
        np.unique(batch.owners(ends, np.flatnonzero(digit))).tolist(),
        np.unique(batch.owners(ends, run_starts)).tolist(),
    )


def _placeholders(text: str) -> str:
    """Lower-cased text with URLs, emails and handles replaced by placeholder tokens (`normalize` without
    numbers, repeated characters and stripping)."""
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
    return text


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
    return " ".join([normalize(text), *extra_tokens(context, brand_reply)])


def extra_tokens(context: Sequence[str] = (), brand_reply: str = "") -> list[str]:
    """The tokens `model_text` appends to the normalised text."""
    extra = [CONTEXT_TOKEN] if context else []
    if brand_reply:
        extra += brand_tokens(brand_reply).split()
    return extra


_PLACEHOLDERS = frozenset({"xurl", "xemail", "xhandle", "xnum"})
# The language guess skips everything from a URL's start or an "@" to the next space. Where normalising reads
# the same spans differently, the tokens hold other words: a URL prefix right after a letter (not a URL to the
# language guess) or with nothing after it (not a URL to normalize), an "@" right after a non-space (an
# email, a glued handle), or a handle followed by more word characters before the next space ("@brand's").
# (Each check on the character before a URL prefix follows the prefix's first letter, so that the scan can
# jump from "h" or "w" to the next one.)
_LOOSE_URL = re.compile(r"h(?<=[^\W\d_]h)ttps?://|w(?<=[^\W\d_]w)ww\.|(?:https?://|www\.)(?!\S)")
_TANGLED_AT = re.compile(r"@(?:(?<=\S@)|\w*+[^\w\s]+\w)")  # "*+": giving back word characters never helps


def language_of(text: str, normalized: str, normalized_tokens: list[str]) -> str:
    """`language.detect(text)`, reusing the tokens of `normalized`, the normalised text, when they hold the
    same words.

    Unless the text holds an airline re-save artifact, an "_", a loose URL or a tangled handle, the tokens of
    two characters or more are the words the language guess finds, but for the placeholders and the
    entity names "amp", "lt" and "gt" (no function words). Runs of four or more repeated letters are
    shortened, but no function word has even three.
    """
    lower = text.lower()
    tangled = bool(
        (("http" in lower or "www." in lower) and _LOOSE_URL.search(lower))
        or ("@" in lower and _TANGLED_AT.search(lower))
    )
    return _language_of(text, normalized, normalized_tokens, tangled)


def languages_of(
    texts: Sequence[str], normalized: Sequence[str], normalized_tokens: Sequence[list[str]]
) -> list[str]:
    """`list(map(language_of, texts, normalized, normalized_tokens))`, looking for tangled handles in one scan
    of the whole batch (from "@" to "@")."""
    lowered = [t.lower() for t in texts]
    joined = batch.join(lowered)
    if joined is None:
        return list(map(language_of, texts, normalized, normalized_tokens))
    tangled = [("http" in t or "www." in t) and _LOOSE_URL.search(t) is not None for t in lowered]
    # The separator is whitespace to the pattern, just like the start of a text.
    found = [m.start() for m in _TANGLED_AT.finditer(joined)]
    if found:
        for i in batch.owners(batch.ends(lowered, 1), found).tolist():
            tangled[i] = True
    return list(map(_language_of, texts, normalized, normalized_tokens, tangled))


def _language_of(text: str, normalized: str, normalized_tokens: list[str], tangled: bool) -> str:
    """`language_of`, told whether the text holds a loose URL or a tangled handle."""
    if not text.isascii():
        script = language_mod.script(text)
        if script:
            return script
    if tangled or "Flight" in text or "_" in normalized:
        return language_mod.detect(text)
    by_function_words = language_mod.function_word_vote(normalized_tokens)
    if by_function_words:
        return by_function_words
    words = [t for t in normalized_tokens if t not in _PLACEHOLDERS]
    if not any(len(w) > 1 for w in words):
        # The words left out might be all there is ("amp", or a literal "xnum" in the text).
        return language_mod.detect(text)
    return language_mod.vote(words)


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
# TOKEN_PATTERN without its word boundaries: a scan for words only ever starts at the beginning of a run of
# word characters and takes all of it, so "\b" never rejects a match.
_WORD_OR_MARK = re.compile(r"\w+|[?!]")
# ASCII characters that are neither word characters nor "?" or "!" become spaces. Every entry maps one
# character to one ASCII character, which str.translate applies to ASCII text without a dictionary lookup
# per character.
_ASCII_SEPARATORS = {
    ord(c): " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_") and c not in "?!"
}


def tokens(text: str) -> list[str]:
    """The tokens of TOKEN_PATTERN (runs of word characters, and each "?" or "!"); for ASCII text a translate
    and a split, which cost less than the regular expression scan."""
    if not text.isascii():
        return _WORD_OR_MARK.findall(text)
    if "?" in text or "!" in text:
        text = text.replace("?", " ? ").replace("!", " ! ")
    return text.translate(_ASCII_SEPARATORS).split()


# _ASCII_SEPARATORS, keeping the batch separator.
_ASCII_SEPARATORS_BUT_SEP = {k: v for k, v in _ASCII_SEPARATORS.items() if k != ord(batch.SEP)}


def tokens_many(texts: Sequence[str]) -> list[list[str]]:
    """`[tokens(t) for t in texts]`: the ASCII texts are translated and split as one string."""
    ascii_texts = [t for t in texts if t.isascii()]
    joined = batch.join(ascii_texts)
    if joined is None:
        return [tokens(t) for t in texts]
    if "?" in joined or "!" in joined:
        joined = joined.replace("?", " ? ").replace("!", " ! ")
    parts = joined.translate(_ASCII_SEPARATORS_BUT_SEP).split(batch.SEP)
    ascii_tokens = iter([part.split() for part in parts])
    return [next(ascii_tokens) if t.isascii() else _WORD_OR_MARK.findall(t) for t in texts]


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
    # By word id, whether the word begins (ends) some bigram; one entry more, False, for id -1 (unknown word).
    begins: np.ndarray
    ends: np.ndarray


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
    begins = np.zeros(width + 1, dtype=bool)
    ends = np.zeros(width + 1, dtype=bool)
    begins[keys // width] = True
    ends[keys % width] = True
    found = _Lookup(words, n_features, width, keys[order], ids[order], begins, ends)
    _LOOKUPS[vectorizer] = found
    return found


def tfidf_transform(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    """The same matrix as `vectorizer.transform(texts)` for the word 1–2-gram TF-IDF built here, faster.

    scikit-learn counts n-grams document by document in Python; here every token of the batch is looked up
    in one pass, bigrams are found by a vectorised binary search, and the counting, sublinear TF, IDF
    weighting and L2 norm run as array operations.
    """
    return tfidf_from_tokens(vectorizer, [tokens(text.lower()) for text in texts])


def tfidf_from_tokens(vectorizer: TfidfVectorizer, token_lists: Sequence[list[str]]) -> sp.csr_matrix:
    """`tfidf_transform` of texts already split into tokens (lower-cased)."""
    lookup = _lookup(vectorizer)
    flat: list[str] = []
    for toks in token_lists:
        flat += toks
        flat.append(_SENTINEL)  # never a word: no bigram spans two messages
    n = len(flat)
    doc = np.repeat(np.arange(len(token_lists)), [len(toks) + 1 for toks in token_lists])
    word = np.fromiter(map(lookup.words.get, flat, repeat(-1)), dtype=np.int64, count=n)
    first, second = word[:-1], word[1:]
    pos = np.flatnonzero(lookup.begins[first] & lookup.ends[second])
    keys = first[pos] * lookup.width + second[pos]
    at = np.minimum(np.searchsorted(lookup.keys, keys), max(len(lookup.keys) - 1, 0))
    hit = lookup.keys[at] == keys if len(lookup.keys) else np.zeros(len(keys), dtype=bool)
    uni = (word >= 0) & (word < lookup.n_features)
    ids = np.concatenate([word[uni], lookup.ids[at[hit]]])
    rows = np.concatenate([doc[uni], doc[pos[hit]]])
    # Counted by sorting (row, feature) keys: the sorted distinct keys are the matrix in CSR order.
    n_docs, n_features = len(token_lists), lookup.n_features
    cell, count = np.unique(rows * n_features + ids, return_counts=True)
    columns = cell % n_features
    x = sp.csr_matrix(
        (
            (np.log(count.astype(np.float32)) + 1.0) * vectorizer.idf_[columns].astype(np.float32),
            columns.astype(np.int32),
            np.searchsorted(cell, np.arange(n_docs + 1) * n_features).astype(np.int32),
        ),
        shape=(n_docs, n_features),
    )
    # What sklearn.preprocessing.normalize runs on a CSR matrix, without its input checks.
    inplace_csr_row_normalize_l2(x)
    return x


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
        # A tuple holds only strings, so the garbage collector stops re-scanning it.
        self.names = tuple(names)
        self.coef = np.asarray(self.clf.coef_, dtype=np.float32)
        if len(self.classes) < 3:
            raise ValueError("a model with fewer than three classes is not multinomial")

    def proba(self, x: sp.csr_matrix) -> np.ndarray:
        """`clf.predict_proba(x)` for CSR features, without scikit-learn's input validation (about a
        millisecond per call): the same product, intercept and softmax as its multinomial branch."""
        return softmax(x @ self.clf.coef_.T + self.clf.intercept_, copy=False)

    def top_features(self, x, chosen: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
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


_GC_YOUNG_THRESHOLD = 50_000


class Triager:
    """Intent, topic, urgency, entities and the bot's answer for batches of messages.

    Loads the artifacts once; `classify` makes one transform and one probability product per model per batch,
    and runs the urgency rules, entity patterns and knowledge base only on the messages that need them.
    """

    def __init__(self, models_dir: Path, top_k: int = 5) -> None:
        self.models_dir = Path(models_dir)
        # Nothing is opened before every artifact matches its SHA-256 in the manifest.
        manifest.verify(self.models_dir)
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
        rules.compile_prefilter()
        # The loaded models are a few hundred thousand objects that live as long as the process: moved out of
        # the collector's generations, they are no longer re-scanned by every full collection while serving.
        gc.freeze()
        # A batch of a thousand messages allocates tens of thousands of short-lived containers (results,
        # token lists), none in a reference cycle: at the default threshold (700) the collector would run
        # a young-generation pass every few dozen messages. Measured by `parley classify-bench`.
        if gc.get_threshold()[0] < _GC_YOUNG_THRESHOLD:
            gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

    def probabilities(self, items: Sequence[Item]):
        """(intent features, intent probabilities in INTENTS order, topic probabilities) for a batch."""
        normalized = normalize_many([item.text for item in items])
        return self._probabilities(items, tokens_many(normalized))

    def _probabilities(self, items: Sequence[Item], normalized_tokens: list[list[str]]):
        """`probabilities`, from the tokens of each item's normalised text."""
        # The tokens of model_text: the normalised text's, then those for earlier turns and the brand reply.
        model_tokens = [
            toks + extra_tokens(item.context, item.brand_reply) if item.context or item.brand_reply else toks
            for item, toks in zip(items, normalized_tokens, strict=True)
        ]
        x_intent = tfidf_from_tokens(self.intent.features, model_tokens)
        p_intent = self.intent.proba(x_intent)[:, self._intent_cols]
        x_topic = x_intent if self.shared_features else tfidf_from_tokens(self.topic.features, model_tokens)
        return x_intent, p_intent, self.topic.proba(x_topic)

    def classify(self, items: Sequence[Item]) -> list[Triage]:
        if not items:
            return []
        texts = [item.text for item in items]
        normalized = normalize_many(texts)
        normalized_tokens = tokens_many(normalized)
        languages = languages_of(texts, normalized, normalized_tokens)
        x_intent, p_intent, p_topic = self._probabilities(items, normalized_tokens)
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
        answers = self.knowledge.answer_many(
            texts, finals, [item.channel for item in items], topics, x_intent
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
            )
            for item, final, row, topic, confidence, hit, entities, top, answer, model_intent, lang in zip(
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
                strict=True,
            )
        ]

    def answer(self, text: str, channel: str = "") -> BotAnswer:
        """The bot's answer for one message, judged with the same intent model and rules as `classify`."""
        return self.classify([Item("", text, channel)])[0].bot_answer
