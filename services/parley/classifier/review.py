"""Cues that send a message to urgent review: regulator, consumer-protection, press and police accounts and
words per country, and account-takeover wording, read from a maintained data file
(`models/urgent_review.yaml`).

The cues match the raw text: an @handle is a cue here although the model only ever sees a placeholder for
it. A cue flags a message for review (`Triage.urgent_review`) without changing its intent. Batches are scanned
once by Hyperscan in prefilter mode (a superset of the matches); the Python patterns confirm the few
(message, cue) pairs it reports.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hyperscan
import numpy as np
import yaml

from parley.classifier import batch

_ASCII_WORD = re.compile(r"[A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class Cue:
    # "<group>/<country>", e.g. "regulator/US", "account_takeover", or a situation such as "stranded".
    label: str
    pattern: re.Pattern[str]


def _word_pattern(word: str) -> str:
    """`word` (a regular expression) bounded by word boundaries where it begins or ends with an ASCII word
    character (Japanese and Chinese write words without spaces)."""
    head = r"\b" if _ASCII_WORD.match(word) else ""
    tail = r"\b" if _ASCII_WORD.match(word[-1:]) else ""
    return f"{head}(?:{word}){tail}"


def _compile(label: str, pattern: str, where: str) -> Cue:
    try:
        return Cue(label, re.compile(pattern, re.IGNORECASE))
    except re.error as e:
        raise ValueError(f"{where}: not a valid pattern ({e})") from e


def parse(doc: dict[str, Any], source: str = "urgent_review.yaml") -> list[Cue]:
    """The cues of a parsed review file; a ValueError names the entry at fault."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected a mapping with 'countries', 'account_takeover', 'situations'")
    cues: list[Cue] = []
    for country, groups in (doc.get("countries") or {}).items():
        for group, entries in (groups or {}).items():
            label, where = f"{group}/{country}", f"{source}: countries.{country}.{group}"
            unknown = set(entries or {}) - {"accounts", "handle_parts", "words"}
            if unknown:
                raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
            accounts = [str(a).lstrip("@") for a in entries.get("accounts") or []]
            bad = [a for a in accounts if not re.fullmatch(r"\w+", a)]
            if bad:
                raise ValueError(f"{where}.accounts: not handles {bad}")
            if accounts:
                names = "|".join(re.escape(a) for a in accounts)
                cues.append(_compile(label, rf"@(?:{names})(?!\w)", where + ".accounts"))
            parts = [re.escape(str(p).lower()) for p in entries.get("handle_parts") or []]
            if parts:
                cues.append(_compile(label, rf"@\w*(?:{'|'.join(parts)})\w*", where + ".handle_parts"))
            for i, word in enumerate(entries.get("words") or []):
                cues.append(_compile(label, _word_pattern(str(word)), f"{where}.words[{i}]"))
    for i, word in enumerate((doc.get("account_takeover") or {}).get("words") or []):
        cues.append(
            _compile("account_takeover", _word_pattern(str(word)), f"{source}: account_takeover.words[{i}]")
        )
    # Situations told in words, whatever the country (stranded travellers, ...): each a list of patterns.
    for group, entries in (doc.get("situations") or {}).items():
        where = f"{source}: situations.{group}"
        unknown = set(entries or {}) - {"words"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        for i, word in enumerate((entries or {}).get("words") or []):
            cues.append(_compile(str(group), _word_pattern(str(word)), f"{where}.words[{i}]"))
    return cues


class ReviewCues:
    """The review cues of one file, with a Hyperscan prefilter over all of them."""

    def __init__(self, cues: Sequence[Cue]) -> None:
        self.cues = tuple(cues)
        self._database = None
        if self.cues:
            self._database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            flags = (
                hyperscan.HS_FLAG_PREFILTER
                | hyperscan.HS_FLAG_CASELESS
                | hyperscan.HS_FLAG_UTF8
                | hyperscan.HS_FLAG_UCP
            )
            self._database.compile(
                expressions=[c.pattern.pattern.encode() for c in self.cues],
                ids=list(range(len(self.cues))),
                elements=len(self.cues),
                flags=[flags] * len(self.cues),
            )
        # One scratch space per database: scans from several threads take turns.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> ReviewCues:
        """The cues of a review file; a missing file means no cues."""
        path = Path(path)
        if not path.exists():
            return cls([])
        return cls(parse(yaml.safe_load(path.read_text(encoding="utf-8")), path.name))

    def reasons(self, text: str) -> list[str]:
        """Every cue that matches `text`, as "<label>: <matched text>"."""
        found: list[str] = []
        for cue in self.cues:
            _add(found, cue, text)
        return found

    def reasons_many(self, texts: Sequence[str]) -> list[list[str]]:
        """`[self.reasons(t) for t in texts]`, from one prefilter scan of the batch."""
        out: list[list[str]] = [[] for _ in texts]
        if self._database is None or not texts:
            return out
        joined = batch.join(texts)
        try:
            buffer = joined.encode("utf-8") if joined is not None else None
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8, so not scannable
            buffer = None
        if buffer is None:
            return [self.reasons(t) for t in texts]
        codes = np.frombuffer(buffer, dtype=np.uint8)
        ends = np.append(np.flatnonzero(codes == ord(batch.SEP)) + 1, len(buffer) + 1)
        ends_at: list[int] = []
        cue_ids: list[int] = []

        def on_match(cue: int, start: int, end: int, flags: int, context: object) -> None:
            ends_at.append(end)
            cue_ids.append(cue)

        with self._lock:
            self._database.scan(buffer, match_event_handler=on_match)
        if not ends_at:
            return out
        owners = batch.owners(ends, np.asarray(ends_at) - 1).tolist()
        for i, cue_id in sorted(set(zip(owners, cue_ids, strict=True))):
            _add(out[i], self.cues[cue_id], texts[i])
        return out


def _add(found: list[str], cue: Cue, text: str) -> None:
    """Appends the cue's reason when it matches `text` and no earlier cue of the same label did (an account
    and a word of one regulator are one reason)."""
    prefix = cue.label + ": "
    if any(r.startswith(prefix) for r in found):
        return
    m = cue.pattern.search(text)
    if m is not None:
        found.append(prefix + m.group(0).strip())


# The urgent probability that flags a message when neither settings nor the trained models name one.
DEFAULT_THRESHOLD = 0.5


def flag_many(
    cues: ReviewCues,
    texts: Sequence[str],
    contexts: Sequence[Sequence[str]],
    intents: Sequence[str],
    p_urgent: np.ndarray,
    threshold: float,
) -> tuple[list[bool], list[list[str]]]:
    """Per message, whether it goes to urgent review, and the cues behind that.

    A message is flagged when its final intent is urgent, its urgent probability reaches `threshold`, a cue
    matches its raw text, or an earlier customer turn of its conversation (`contexts`) fired an urgency rule
    or a cue: "still nothing, it's the same charge" is urgent only after "someone used my card".
    """
    from parley.classifier import rules

    reasons = cues.reasons_many(texts)
    turns = [(i, turn) for i, context in enumerate(contexts) for turn in context]
    if turns:
        turn_texts = [turn for _, turn in turns]
        for (i, _), hits, found in zip(
            turns, rules.urgency_many(turn_texts), cues.reasons_many(turn_texts), strict=True
        ):
            reasons[i] += [f"earlier turn {h.reason()}" for h in hits] + [f"earlier turn {r}" for r in found]
    over = (p_urgent >= threshold).tolist()
    flags = [
        intent == "urgent" or high or bool(why)
        for intent, high, why in zip(intents, over, reasons, strict=True)
    ]
    return flags, reasons
