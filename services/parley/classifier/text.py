"""What the models read, computed for a whole batch at once: normalised texts, their tokens, the tokens for
a message's place in its conversation, and the language guessed from them.

Every function here takes and returns one entry per message. The batch scans (digits and repeated
characters in NumPy, ASCII tokens by one translate and split, tangled handles in one regular-expression
scan) give exactly what the straightforward per-message code gives; tests/classifier/test_batch_paths.py
holds that code and pins the two together.

A message that follows earlier customer turns of its conversation gets one extra token (`xctx`): follow-ups
("done, DM sent", "still not working") are labelled differently from conversation openers. A message that
answers a brand's message gets a token for each thing that message asked for (a DM, details): "sure, it's
12345" after "please DM us your order number" supplies details.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from parley.classifier import batch
from parley.classifier import language as language_mod

CONTEXT_TOKEN = "xctx"
# Words, and "?"/"!" as tokens of their own: punctuation carries intent in short social messages.
TOKEN_PATTERN = r"(?u)\b\w+\b|[?!]"

_URL = re.compile(r"(?:https?://|www\.)\S+")
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_HANDLE = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_REPEAT = re.compile(r"(\w)\1{3,}")


def _glued_at(text: str) -> bool:
    """True when some "@" follows a non-space character."""
    i = text.find("@", 1)
    while i > 0:
        if not text[i - 1].isspace():
            return True
        i = text.find("@", i + 1)
    return False


def _texts(texts: Sequence[str]) -> Sequence[str]:
    """`texts`, refused when it is one string: every function here takes a batch, and a string would be read
    as a batch of its characters."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got one string")
    return texts


def normalize_many(texts: Sequence[str]) -> list[str]:
    """Each text lower-cased, with URLs, emails, handles and numbers replaced by placeholder tokens and runs
    of four or more repeated characters shortened to three.

    Each substitution runs only where its cue is present: the URL, email and handle cues are looked for per
    text; digits and repeated characters, which no cheap cue skips, are looked for once over the whole batch
    in NumPy.
    """
    out = [_placeholders(t) for t in _texts(texts)]
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


def _brand_tokens(brand_reply: str) -> str:
    """Tokens for what the brand's message asked for ("" when it asked for nothing or there is none)."""
    if not brand_reply.strip():
        return ""
    lower = brand_reply.lower()
    return " ".join(token for token, pattern in _BRAND_ACTS if pattern.search(lower))


# TOKEN_PATTERN without its word boundaries: a scan for words only ever starts at the beginning of a run of
# word characters and takes all of it, so "\b" never rejects a match.
_WORD_OR_MARK = re.compile(r"\w+|[?!]")
# ASCII characters that are neither word characters nor "?" or "!" become spaces. Every entry maps one
# character to one ASCII character, which str.translate applies to ASCII text without a dictionary lookup
# per character.
_ASCII_SEPARATORS = {
    ord(c): " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_") and c not in "?!"
}


def _tokens(text: str) -> list[str]:
    """The tokens of TOKEN_PATTERN in one text; for ASCII text a translate and a split, which cost less than
    the regular expression scan."""
    if not text.isascii():
        return _WORD_OR_MARK.findall(text)
    if "?" in text or "!" in text:
        text = text.replace("?", " ? ").replace("!", " ! ")
    return text.translate(_ASCII_SEPARATORS).split()


# _ASCII_SEPARATORS, keeping the batch separator.
_ASCII_SEPARATORS_BUT_SEP = {k: v for k, v in _ASCII_SEPARATORS.items() if k != ord(batch.SEP)}


def tokens_many(texts: Sequence[str]) -> list[list[str]]:
    """The tokens of TOKEN_PATTERN (runs of word characters, and each "?" or "!") in each text; the ASCII
    texts are translated and split as one string."""
    ascii_texts = [t for t in _texts(texts) if t.isascii()]
    joined = batch.join(ascii_texts)
    if joined is None:
        return [_tokens(t) for t in texts]
    if "?" in joined or "!" in joined:
        joined = joined.replace("?", " ? ").replace("!", " ! ")
    parts = joined.translate(_ASCII_SEPARATORS_BUT_SEP).split(batch.SEP)
    ascii_tokens = iter([part.split() for part in parts])
    return [next(ascii_tokens) if t.isascii() else _WORD_OR_MARK.findall(t) for t in texts]


def _extra_tokens(context: Sequence[str], brand_reply: str) -> list[str]:
    """The tokens appended to a message's normalised text: the follow-up token when earlier turns exist, and
    those describing the brand message it answers."""
    extra = [CONTEXT_TOKEN] if context else []
    if brand_reply:
        extra += _brand_tokens(brand_reply).split()
    return extra


def model_tokens(
    normalized_tokens: Sequence[list[str]],
    contexts: Sequence[Sequence[str]],
    brand_replies: Sequence[str],
) -> list[list[str]]:
    """What the models read, as tokens: each normalised text's tokens, then those for its earlier turns and
    the brand message it answers (the lists of messages with neither are returned as they are)."""
    return [
        toks + _extra_tokens(context, reply) if context or reply else toks
        for toks, context, reply in zip(normalized_tokens, contexts, brand_replies, strict=True)
    ]


def model_texts(
    texts: Sequence[str],
    contexts: Sequence[Sequence[str]] | None = None,
    brand_replies: Sequence[str] | None = None,
) -> list[str]:
    """What the models read, as text (what training fits the pipelines on): each normalised text, then the
    tokens for its earlier turns and the brand message it answers. `contexts` and `brand_replies` default to
    none for every text."""
    normalized = normalize_many(texts)
    contexts = contexts if contexts is not None else [()] * len(normalized)
    brand_replies = brand_replies if brand_replies is not None else [""] * len(normalized)
    return [
        " ".join([norm, *_extra_tokens(context, reply)]) if context or reply else norm
        for norm, context, reply in zip(normalized, contexts, brand_replies, strict=True)
    ]


_PLACEHOLDERS = frozenset({"xurl", "xemail", "xhandle", "xnum"})
# The language guess skips everything from a URL's start or an "@" to the next space. Where normalising reads
# the same spans differently, the tokens hold other words: a URL prefix right after a letter (not a URL to the
# language guess) or with nothing after it (not a URL to normalize), an "@" right after a non-space (an
# email, a glued handle), or a handle followed by more word characters before the next space ("@brand's").
# (Each check on the character before a URL prefix follows the prefix's first letter, so that the scan can
# jump from "h" or "w" to the next one.)
_LOOSE_URL = re.compile(r"h(?<=[^\W\d_]h)ttps?://|w(?<=[^\W\d_]w)ww\.|(?:https?://|www\.)(?!\S)")
_TANGLED_AT = re.compile(r"@(?:(?<=\S@)|\w*+[^\w\s]+\w)")  # "*+": giving back word characters never helps


def _tangled(lower: str) -> bool:
    """Whether a lower-cased text holds a loose URL or a tangled handle (see above)."""
    return bool(
        (("http" in lower or "www." in lower) and _LOOSE_URL.search(lower))
        or ("@" in lower and _TANGLED_AT.search(lower))
    )


def languages_of(
    texts: Sequence[str], normalized: Sequence[str], normalized_tokens: Sequence[list[str]]
) -> list[str]:
    """`language.detect` of each text, reusing the tokens of its normalised text when they hold the same
    words; tangled handles are looked for in one scan of the whole batch (from "@" to "@").

    Unless the text holds an airline re-save artifact, an "_", a loose URL or a tangled handle, the tokens of
    two characters or more are the words the language guess finds, but for the placeholders and the
    entity names "amp", "lt" and "gt" (no function words). Runs of four or more repeated letters are
    shortened, but no function word has even three.
    """
    lowered = [t.lower() for t in _texts(texts)]
    joined = batch.join(lowered)
    if joined is None:
        tangled = [_tangled(t) for t in lowered]
    else:
        tangled = [("http" in t or "www." in t) and _LOOSE_URL.search(t) is not None for t in lowered]
        # The separator is whitespace to the pattern, just like the start of a text.
        found = [m.start() for m in _TANGLED_AT.finditer(joined)]
        if found:
            for i in batch.owners(batch.ends(lowered, 1), found).tolist():
                tangled[i] = True
    return list(map(_language_of, texts, normalized, normalized_tokens, tangled))


def _language_of(text: str, normalized: str, normalized_tokens: list[str], tangled: bool) -> str:
    """The language of one text, told whether it holds a loose URL or a tangled handle."""
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
