"""The batched serving paths give exactly what straightforward per-message code gives.

`normalize_many`, `tokens_many`, `extract_many`, the language guess from normalised tokens and the
array-based cues are faster ways to the same answers; these tests pin them to plain per-message code (kept
here, as the reference) on tricky inputs and on seeded random ones.
"""

from __future__ import annotations

import random
import re

import pytest

from parley.classifier import batch as batch_mod
from parley.classifier import entities, language
from parley.classifier.model import Item, Triager
from parley.classifier.text import TOKEN_PATTERN, languages_of, normalize_many, tokens_many
from parley.config import REPO_ROOT

SEP = batch_mod.SEP

TRICKY = [
    "",
    " ",
    "@",
    "@@a",
    "a@b",
    "x a@b.co y",
    "jo.doe+x@mail.co.uk or see https://acme.com/help?q=1.",
    "@united Flight Cancelled Flightled, Late Flightr http://t.co/x 123",
    "mail me at jo@x.com &amp; call 555-1234 &lt;3 &gt;",
    "soooooo gooood!!!! 1111 ____ ....",
    "aaa",
    "aaab",
    "ΟΔΟΣ Σα ΣΣ",
    "İstanbul İİİİ",
    "١٢٣٤٥ ٦٧٨٩٠١٢ phone",
    "²³ ½ Ⅻ",
    "\x1c\x1d\x1f\u2003\u00a0tabs\tand\nnewlines",
    "don’t stop — naïve café_bar 😀 ok",
    "snake_case __init__ x_y",
    "card 4111 1111 1111 1111 please, 5555-5555-5555-4444",
    "IBAN DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432",
    "call +1 (415) 555-2671 or 020 7946 0958",
    "flight UA 123 and AA1234 both late, B6 12, 6E 9, ZZ 123, dl 404",
    "@UA123 @115873 @Uber_Support order #55512, acct no. 12-3456-78",
    "ship it to 221 Baker Street, London NW1 6XE please",
    "13341 Woodland Park Drive\nHerndon, Virginia, 20171",
    "Hauptstraße 5, 10115 Berlin and Berliner Allee 12a",
    "5  Main Street and 5a  Oak Court 90210",
    "www.x.com/1 thehttp://x.com awww.com http:// www.",
    "@brand's @brand: @brand,the @ b .@brand thanks@brand",
    "xnum xurl xhandle xemail amp",
    "こんにちは 注文番号 12345",
    "안녕하세요 مرحبا שלום नमस्ते สวัสดี Привет Γειά",
    "hola gracias por nada, merci bonjour, danke bitte",
    "\ud800 lone surrogate 12",
]

# Pieces for random texts: entity fragments, separators, digits and letters of other scripts.
PIECES = [
    *"aZ1 9-().@_#:/\n\t\u00a0\u2003é",
    "UA",
    "BA 1",
    "B6",
    "DL4047",
    " 123",
    "4111 1111 1111 1111",
    "+1 (415) 555-2671",
    "DE89 3704 0044 0532 0130 00",
    "order #",
    "account number ",
    "flight ",
    "221 Baker Street",
    ", London NW1 6XE",
    "Hauptstraße 5",
    "jo.doe+x@mail.co.uk",
    "@AcmeCare ",
    "@115873 ",
    "https://t.co/Ab12",
    "www.x.com",
    "http://",
    "٣",
    "١٢٣٤٥٦٧",
    "²",
    "İ",
    "ſ",
    "Σ",
    "🚀",
    "the ",
    "merci ",
    "&amp;",
    "xnum",
    "Late Flight",
    "aaaa",
    "'s",
    "日",
    "Ж",
]


def random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 14))) for _ in range(count)]


def spans(found: list[entities.Entity]) -> list[tuple[str, str, int, int]]:
    return [(e.type, e.text, e.start, e.end) for e in found]


@pytest.fixture(scope="module")
def triager() -> Triager:
    return Triager(REPO_ROOT / "models")


def reference_normalize(text: str) -> str:
    """The normalisation as plainly written: every substitution on every text, no cue checks."""
    text = text.replace("Cancelled Flight", "cancel").replace("Late Flight", "late")
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").lower()
    text = re.sub(r"(?:https?://|www\.)\S+", " xurl ", text)
    text = re.sub(r"\S+@\S+\.\w+", " xemail ", text)
    text = re.sub(r"@\w+", " xhandle ", text)
    text = re.sub(r"\d+(?:[.,:/-]\d+)*", " xnum ", text)
    return re.sub(r"(\w)\1{3,}", r"\1\1\1", text).strip()


@pytest.mark.parametrize("texts", [TRICKY, random_texts(1, 400), [], ["x" + SEP + "aaaa", "1"]])
def test_normalize_many_is_the_plain_normalisation(texts: list[str]) -> None:
    assert normalize_many(texts) == [reference_normalize(t) for t in texts]


@pytest.mark.parametrize(
    "texts",
    [TRICKY, random_texts(2, 400), random_texts(7, 400), [], [""], ["a" + SEP + "b?", "c!"], ["é", "x"]],
)
def test_tokens_many_is_the_vectorizer_pattern(texts: list[str]) -> None:
    assert tokens_many(texts) == [re.findall(TOKEN_PATTERN, t) for t in texts]
    normalized = normalize_many(texts)
    assert tokens_many(normalized) == [re.findall(TOKEN_PATTERN, t) for t in normalized]


# The language guess as it was first written: one scan for words, URLs and handles.
_WORD_OR_SKIPPED = re.compile(r"(?:https?://|www\.|@)\S*|([^\W\d_]{2,})")


def reference_detect(text: str) -> str:
    if not text.isascii():
        for pattern, lang in language._SCRIPTS:
            if pattern.search(text):
                return lang
    words = [w for w in _WORD_OR_SKIPPED.findall(text.lower()) if w]
    if not words:
        return "und"
    hits = [0] * len(language._LANGS)
    for w in set(words):
        for i in language._LANGS_OF.get(w, ()):
            hits[i] += 1
    best = max(hits)
    if best:
        return language._LANGS[hits.index(best)]
    return "en" if all(w.isascii() for w in words) else "und"


@pytest.mark.parametrize("seed", [3, 4])
def test_language_guesses_agree(seed: int) -> None:
    texts = TRICKY + random_texts(seed, 3000)
    normalized = normalize_many(texts)
    for text in texts:
        assert language.detect(text) == reference_detect(text), text
    assert languages_of(texts, normalized, tokens_many(normalized)) == [reference_detect(t) for t in texts]
    odd = ["x" + SEP + "@a@b", "@b thanks"]
    assert languages_of(odd, normalize_many(odd), tokens_many(normalize_many(odd))) == list(
        map(reference_detect, odd)
    )


@pytest.mark.parametrize(
    "texts",
    [
        TRICKY,
        random_texts(5, 600),
        random_texts(6, 600),
        ["a" + SEP + "b", "UA 123"],
        [""],
        [],
        ["123"],
        ["@1", "2", "UA1", "@a1b 5555-5555-5555-4444"],
    ],
)
def test_extract_many_is_extract(texts: list[str]) -> None:
    assert [spans(found) for found in entities.extract_many(texts)] == [
        spans(entities.extract(t)) for t in texts
    ]


def test_batch_cues_are_never_stricter_than_the_patterns_cues() -> None:
    texts = TRICKY + random_texts(7, 600)
    numbered, cues = entities._batch_cues(SEP.join(texts), batch_mod.ends(texts, 1))
    for text, has_digit, batch in zip(texts, numbered, cues, strict=True):
        at = "@" in text
        assert has_digit == (
            entities._ANY_DIGIT.search(entities._AT_WORD.sub(" ", text) if at else text) is not None
        )
        if has_digit:
            single = entities._cues(text)
            assert batch.n_digits == single.n_digits
            for name in ("iban", "card", "address", "phone"):
                assert getattr(batch, name) >= getattr(single, name), (name, text)


def test_classify_in_one_batch_equals_one_by_one(triager: Triager) -> None:
    texts = TRICKY + random_texts(8, 60)
    items = [Item(str(i), t, "whatsapp" if i % 2 else "x") for i, t in enumerate(texts)]
    for together, item in zip(triager.classify(items), items, strict=True):
        [alone] = triager.classify([item])
        assert (alone.intent, alone.topic, alone.model_intent, alone.language) == (
            together.intent,
            together.topic,
            together.model_intent,
            together.language,
        )
        assert alone.entities == together.entities and alone.urgency_reasons == together.urgency_reasons
        assert alone.explanation == together.explanation and alone.bot_answer == together.bot_answer
        assert alone.scores == pytest.approx(together.scores, abs=1e-9)
        assert alone.topic_confidence == pytest.approx(together.topic_confidence, abs=1e-9)


def test_batch_offsets_trace_back_to_their_text() -> None:
    texts = ["ab", "", "cde"]
    joined = batch_mod.join(texts)
    assert joined == f"ab{SEP}{SEP}cde"
    ends = batch_mod.ends(texts, 1)
    # Every character, the separator after a text included, belongs to that text.
    assert batch_mod.owners(ends, range(len(joined))).tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert batch_mod.join(["a", "b" + SEP]) is None and batch_mod.join([]) is None
    assert batch_mod.code_points("a\U0001f600\ud800").tolist() == [97, 0x1F600, 0xD800]
