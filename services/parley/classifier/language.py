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
# Words of two letters or more, outside URLs and handles (whose fragments look like words of any language).
_TOKEN = re.compile(r"(?:https?://|www\.|@)\S*|([^\W\d_]{2,})")


def detect(text: str) -> str:
    """An ISO 639-1 code, or "und" when there is nothing to judge by."""
    if not text.isascii():
        for pattern, lang in _SCRIPTS:
            if pattern.search(text):
                return lang
    words = [w for w in _TOKEN.findall(text.lower()) if w]
    if not words:
        return "und"
    # Count each language's function words (each distinct word once) in one pass over the message's words.
    hits = [0] * len(_LANGS)
    for w in set(words):
        for i in _LANGS_OF.get(w, ()):
            hits[i] += 1
    # English is first and wins ties.
    best_hits = max(hits)
    best = _LANGS[hits.index(best_hits)] if best_hits else ""
    # No function word at all: words in plain ASCII are most likely English.
    return best or ("en" if all(w.isascii() for w in words) else "und")
