"""A message's language, guessed cheaply: the writing system for non-Latin scripts, then the share of very
common function words for the Latin-script languages customers write to brands in. Good enough to route a
message to an agent who reads it; "und" when there is nothing to go on.
"""

from __future__ import annotations

import re

# Kana before Han: Japanese text mixes both, Chinese has no kana.
_SCRIPTS = (
    (re.compile(r"[\u3040-\u30ff]"), "ja"),
    (re.compile(r"[\uac00-\ud7af]"), "ko"),
    (re.compile(r"[\u4e00-\u9fff]"), "zh"),
    (re.compile(r"[\u0600-\u06ff]"), "ar"),
    (re.compile(r"[\u0590-\u05ff]"), "he"),
    (re.compile(r"[\u0900-\u097f]"), "hi"),
    (re.compile(r"[\u0e00-\u0e7f]"), "th"),
    (re.compile(r"[\u0400-\u04ff]"), "ru"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
)
# Any of the scripts above: one scan tells whether the ordered checks are needed at all.
_ANY_SCRIPT = re.compile("|".join(pattern.pattern for pattern, _ in _SCRIPTS))

_FUNCTION_WORDS = {
    "en": "the and is are was to of in for on my you your it this that have has not with can what why how"
    " me we be do does did no yes please thanks thank just but",
    "es": "el la los las de del que en es un una por para con no mi su se lo al pero como más muy gracias"
    " hola está estoy tengo",
    "fr": "le la les des de du et est un une pour pas que qui dans sur avec mon ma mes je vous il ce merci"
    " bonjour suis",
    "de": "der die das und ist nicht ein eine ich du sie wir mit auf für von zu den dem im bei mein danke"
    " bitte hallo",
    "pt": "os as de do da que um uma para com não no na meu minha obrigado olá por mais está",
    "it": "il lo la gli le di che un una per con non mi sono ciao grazie della nel",
    "nl": "de het een en van is niet ik je jij we met op voor dat die maar dank",
    "tr": "bir ve bu da de için ile ne çok var yok ben sen mi mı teşekkürler merhaba",
    "id": "yang dan di ke dari ini itu tidak saya aku untuk dengan ada apa sudah belum nak tukar sbb",
}
# (Single letters are not words here: "a", "e", "o", "y" belong to too many languages.)
_WORDS = {lang: frozenset(words.split()) for lang, words in _FUNCTION_WORDS.items()}
_LANGS = tuple(_WORDS)
# word → the indices (in _LANGS) of the languages that list it
_LANGS_OF: dict[str, tuple[int, ...]] = {}
for _i, _lang in enumerate(_LANGS):
    for _w in _WORDS[_lang]:
        _LANGS_OF[_w] = (*_LANGS_OF.get(_w, ()), _i)
# Words are runs of two letters or more, outside URLs and handles (whose fragments look like words of any
# language). A URL or a handle runs to the next whitespace; a URL counts only where a word could start (not
# right after a letter), which is what a left-to-right scan for words and URLs would find. Each URL prefix
# is written as its first letter, then the check on the character before it, so that the scan can jump from
# "@", "h" or "w" to the next one.
_URL_OR_HANDLE = re.compile(r"@\S*|h(?<![^\W\d_]h)ttps?://\S*|w(?<![^\W\d_]w)ww\.\S*")
_LETTER_RUN = re.compile(r"[^\W\d_]{2,}")
# In ASCII text letters are a-z after lower-casing: every other character becomes a space, then str.split
# returns the letter runs (single letters too, which match no function word).
_NOT_ASCII_LETTER = {ord(c): " " for c in map(chr, range(128)) if not c.isalpha()}
_ANY_FUNCTION_WORD = frozenset(_LANGS_OF)
# Each function word's languages as one integer holding a byte per language (in _LANGS order): the sum over
# a message's function words counts the hits of every language at once.
_LANG_BYTES = {w: sum(1 << (8 * i) for i in langs) for w, langs in _LANGS_OF.items()}
assert max(map(len, _WORDS.values())) < 256  # no count can spill into the next language's byte


def detect(text: str) -> str:
    """An ISO 639-1 code, or "und" when there is nothing to judge by."""
    return script(text) or vote(_letter_runs(text))


def script(text: str) -> str:
    """The language of the first non-Latin script found in `text` (in the order of _SCRIPTS), else ""."""
    if text.isascii() or not _ANY_SCRIPT.search(text):
        return ""
    for pattern, lang in _SCRIPTS:
        if pattern.search(text):
            return lang
    return ""


def vote(words: list[str]) -> str:
    """The language of a Latin-script message from its lower-cased words (runs of letters outside URLs and
    handles; runs of a single letter count for nothing)."""
    by_function_words = function_word_vote(words)
    if by_function_words:
        return by_function_words
    longer = [w for w in words if len(w) > 1]
    if not longer:
        return "und"
    # No function word at all: words in plain ASCII are most likely English.
    return "en" if all(w.isascii() for w in longer) else "und"


def function_word_vote(words: list[str]) -> str:
    """The language with the most distinct function words among `words`, or "" when there are none."""
    found = _ANY_FUNCTION_WORD.intersection(words)
    if not found:
        return ""
    hits = sum(map(_LANG_BYTES.__getitem__, found)).to_bytes(len(_LANGS), "little")
    # English is first and wins ties.
    return _LANGS[hits.index(max(hits))]


def _letter_runs(text: str) -> list[str]:
    """The runs of letters of the lower-cased text outside URLs and handles (ASCII: single letters too)."""
    lower = text.lower()
    if "@" in lower or "http" in lower or "www." in lower:
        lower = _URL_OR_HANDLE.sub(" ", lower)
    # A translate and a split cost less than a regular expression scan; only ASCII text has that shortcut.
    if lower.isascii():
        return lower.translate(_NOT_ASCII_LETTER).split()
    return _LETTER_RUN.findall(lower)
