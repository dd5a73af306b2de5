"""The bot's knowledge base: answers a brand can give in one reply, found by word TF-IDF cosine similarity.

The bot abstains unless the message is a plain question (not a complaint, not urgent), the best answer is
similar enough to one of its paraphrased questions, the answer is allowed on the message's channel, and none
of the answer's `unless` words (a situation it does not fit) occurs in the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

CHANNELS = ("x", "facebook", "messenger", "instagram", "whatsapp")


@dataclass(frozen=True, slots=True)
class Answer:
    id: str
    topic: str
    channels: tuple[str, ...]
    text: str
    questions: tuple[str, ...]
    # Words (or word beginnings) that mean this answer does not fit the customer's case and a person should
    # reply: "how do I change my flight" after a cancellation is a rebooking, not a paid change.
    unless: tuple[str, ...] = ()

    def excluded_by(self, text: str) -> str | None:
        """The first `unless` word found at the start of a word of `text`, else None."""
        if not self.unless:
            return None
        m = re.search(r"\b(?:" + "|".join(map(re.escape, self.unless)) + ")", text, re.IGNORECASE)
        return m.group(0) if m else None


@dataclass(frozen=True, slots=True)
class BotAnswer:
    answer_id: str
    text: str
    confidence: float
    abstained: bool
    allowed_channels: tuple[str, ...]
    topic: str
    # Why the bot abstained: not_a_question, low_confidence or channel_not_allowed; empty when it answers.
    reason: str = ""


def abstention(reason: str, confidence: float = 0.0) -> BotAnswer:
    return BotAnswer("", "", confidence, True, (), "", reason)


# Most messages are not questions; a BotAnswer is immutable, so they can all share this one.
_NOT_A_QUESTION = abstention("not_a_question")


Vectorize = Callable[[Sequence[str]], "sp.csr_matrix"]


class KnowledgeBase:
    """Answers and their paraphrased questions, indexed for retrieval when loaded.

    Messages and paraphrases are compared in one TF-IDF space. The classifier passes its own vectorizer
    (fitted on tens of thousands of messages), so a message's words outside the paraphrases still count
    against a match: a vocabulary fitted on the paraphrases alone would drop them and call "is the iPhone
    promotion in store too?" a perfect match for "where is your store". Without one, the knowledge base fits
    a word vectorizer on its paraphrases (enough for small tests).
    """

    def __init__(
        self, answers: Sequence[Answer], threshold: float = 0.5, vectorize: Vectorize | None = None
    ) -> None:
        if not answers:
            raise ValueError("the knowledge base has no answers")
        self.answers = list(answers)
        self.threshold = threshold
        questions = [q for a in self.answers for q in a.questions]
        self._owner = np.array([i for i, a in enumerate(self.answers) for _ in a.questions])
        if vectorize is None:
            fitted = TfidfVectorizer(ngram_range=(1, 2), stop_words="english", sublinear_tf=True)
            fitted.fit(questions)
            vectorize = fitted.transform
        self.vectorize = vectorize
        self._qw = vectorize(questions).T.tocsr()

    @classmethod
    def from_yaml(cls, path: Path, vectorize: Vectorize | None = None) -> KnowledgeBase:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        answers = []
        for entry in doc["answers"]:
            channels = tuple(entry.get("channels") or CHANNELS)
            unknown = set(channels) - set(CHANNELS)
            if unknown:
                raise ValueError(f"answer {entry['id']}: unknown channels {sorted(unknown)}")
            answers.append(
                Answer(
                    entry["id"],
                    entry["topic"],
                    channels,
                    entry["answer"].strip(),
                    tuple(entry["questions"]),
                    tuple(entry.get("unless") or ()),
                )
            )
        return cls(answers, float(doc.get("threshold", 0.5)), vectorize)

    def scores(
        self, texts: Sequence[str], vectors: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each text, the best answer's index and its cosine similarity in [0, 1].

        `vectors`: the texts already vectorized with this knowledge base's vectorizer, if the caller has them.
        """
        x = self.vectorize(texts) if vectors is None else vectors
        sim = (x @ self._qw).toarray()
        best_q = sim.argmax(axis=1)
        return self._owner[best_q], sim[np.arange(len(texts)), best_q]

    def answer_many(
        self,
        texts: Sequence[str],
        intents: Sequence[str],
        channels: Sequence[str],
        topics: Sequence[str] | None = None,
        vectors: sp.csr_matrix | None = None,
    ) -> list[BotAnswer]:
        """One BotAnswer per text; only questions are looked up, everything else abstains."""
        out = [_NOT_A_QUESTION] * len(texts)
        asked = [i for i, intent in enumerate(intents) if intent == "question"]
        if not asked:
            return out
        best, sims = self.scores([texts[i] for i in asked], None if vectors is None else vectors[asked])
        for i, a, s in zip(asked, best, sims, strict=True):
            ans = self.answers[a]
            conf = round(float(s), 4)
            if conf < self.threshold:
                out[i] = abstention("low_confidence", conf)
            elif channels[i] and channels[i] not in ans.channels:
                out[i] = BotAnswer(ans.id, "", conf, True, ans.channels, ans.topic, "channel_not_allowed")
            elif ans.excluded_by(texts[i]):
                out[i] = BotAnswer(ans.id, "", conf, True, ans.channels, ans.topic, "needs_agent")
            else:
                out[i] = BotAnswer(ans.id, ans.text, conf, False, ans.channels, ans.topic)
        return out
