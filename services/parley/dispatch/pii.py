"""What the public-PII guard looks for: the customer's details however a reply spells them.

A reply is checked twice: as written once Unicode-normalised (NFKC folds full-width "＠" and digits, and the
invisible format characters, zero-width spaces among them, are dropped), and again with spelled-out
separators and digits turned back into symbols ("name at example dot com" -> "name@example.com", "four one
five ..." -> "415..."). Both readings go through the classifier's entity rules and the rules below; phone
numbers are found by `phonenumbers` (libphonenumber's metadata), in the configured regions and in
international form.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import phonenumbers
from phonenumbers import Leniency, PhoneNumberType

from parley.classifier import entities

# Entity types that must never appear in a public reply.
SENSITIVE = ("email", "phone", "payment_card", "order_number", "account_number", "address", "iban")

# Numbers a business publishes (free phone, shared cost, premium rate) are nobody's private number.
_BUSINESS_NUMBER_TYPES = frozenset(
    {PhoneNumberType.TOLL_FREE, PhoneNumberType.SHARED_COST, PhoneNumberType.PREMIUM_RATE}
)


def normalise(text: str) -> str:
    """NFKC, without format characters (zero-width space and joiners, soft hyphen, word joiner, BOM)."""
    folded = unicodedata.normalize("NFKC", text)
    if folded.isascii():  # no format characters there
        return folded
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")


# --- spelled-out separators ---------------------------------------------------------------------------------

_BRACKETED_AT = re.compile(r"\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*", re.IGNORECASE)
_BRACKETED_DOT = re.compile(r"\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*", re.IGNORECASE)
_SPOKEN_DOT = r"(?:\s*\.\s*|\s+dot\s+)"
_LABEL = r"[\w-]+"
# "local at domain dot tld": the domain has at least one dot, written or said; so may the local part.
_SPOKEN_AT = re.compile(
    rf"(?<![\w.+'’-])(?P<local>[\w+-]+(?:{_SPOKEN_DOT}[\w+-]+)*)\s+(?:at|@)\s+"
    rf"(?P<domain>{_LABEL}(?:{_SPOKEN_DOT}{_LABEL})+)",
    re.IGNORECASE,
)
_AT_DOMAIN = re.compile(rf"@(?P<domain>{_LABEL}(?:{_SPOKEN_DOT}{_LABEL})+)", re.IGNORECASE)
_DOT_WORD = re.compile(_SPOKEN_DOT, re.IGNORECASE)
# Words before "at <domain>" that make it a place or a web address, not a mailbox ("find us at example.com").
_NOT_A_MAILBOX = frozenset(
    re.findall(
        r"\w+",
        "us me you him her them it we they is are was be look find visit online here there available "
        "chat write email mail contact reach open site page website store shop",
    )
)


def _joined_domain(domain: str) -> str:
    return _DOT_WORD.sub(".", domain)


def _spoken_address(m: re.Match[str]) -> str:
    local = _joined_domain(m["local"])
    if local.rsplit(".", 1)[-1].lower() in _NOT_A_MAILBOX:
        return m[0]
    return f"{local}@{_joined_domain(m['domain'])}"


def _unspell_separators(text: str) -> str:
    text = _BRACKETED_AT.sub("@", text)
    text = _BRACKETED_DOT.sub(".", text)
    text = _SPOKEN_AT.sub(_spoken_address, text)
    return _AT_DOMAIN.sub(lambda m: "@" + _joined_domain(m["domain"]), text)


# --- spelled-out digits -------------------------------------------------------------------------------------

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_REPEATS = {"double": 2, "triple": 3}
_NUMBER_TOKEN = rf"(?:{'|'.join(_DIGIT_WORDS)}|{'|'.join(_REPEATS)}|\d+)"
# A run of number words and digit groups, separated by spaces, hyphens, commas, dots or slashes.
_NUMBER_RUN = re.compile(rf"\b{_NUMBER_TOKEN}(?:[\s,./-]+{_NUMBER_TOKEN}\b)+", re.IGNORECASE)
_TOKEN = re.compile(_NUMBER_TOKEN, re.IGNORECASE)
# A run is read as one number only when it says at least this many digits, three of them as words ("one or
# two days", "2 or 3" stay as they are).
_MIN_SPELLED_DIGITS = 7
_MIN_DIGIT_WORDS = 3


def _run_digits(run: str) -> str:
    digits: list[str] = []
    repeat = 1
    words = 0
    for token in _TOKEN.findall(run):
        word = token.lower()
        if word in _REPEATS:
            repeat = _REPEATS[word]
            continue
        digits.append((_DIGIT_WORDS.get(word) or token) * repeat)
        words += word in _DIGIT_WORDS
        repeat = 1
    number = "".join(digits)
    return number if words >= _MIN_DIGIT_WORDS and len(number) >= _MIN_SPELLED_DIGITS else run


def _unspell_digits(text: str) -> str:
    return _NUMBER_RUN.sub(lambda m: _run_digits(m[0]), text)


def readings(text: str) -> list[str]:
    """The normalised text, and (when different) the same with spelled-out separators and digits undone."""
    plain = normalise(text)
    unspelled = _unspell_digits(_unspell_separators(plain))
    return [plain] if unspelled == plain else [plain, unspelled]


# --- rules beyond the classifier's entities -----------------------------------------------------------------

# Internationalised addresses: any letters in the local part and the domain, a top-level domain of letters.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.(?:[^\W\d_]{2,}|xn--[\w-]+)\b")
# Card numbers grouped with spaces, dashes, dots or slashes (checked with Luhn).
_CARD = re.compile(r"(?<![\d.,/-])\d(?:[ ./-]?\d){12,18}(?![\d])")
_STREET_TYPES = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|close|crescent|terrace|way|court|ct|place|pl|gardens"
    r"|grove|square|sq|boulevard|blvd|highway|hwy|parkway|mews|row|walk|hill"
)
# Words that say a number counts something ("3 stores on main street"): never part of a street name.
_NOT_A_STREET_WORD = r"(?!(?:on|in|at|to|of|for|from|near|by|and|or|our|your|the|days?|weeks?|stores?)\b)"
# House number first, any case ("12 baker street", "221b Baker St"), UK style included.
_HOUSE_FIRST = re.compile(
    rf"\b\d{{1,5}}[a-z]?,?\s+(?:{_NOT_A_STREET_WORD}[a-z'’.-]+\s+){{1,4}}(?:{_STREET_TYPES})\b", re.IGNORECASE
)
# France, Belgium, Quebec: "12 rue de la Paix", "5 bis avenue Foch", "3, allée des Tilleuls".
_FRENCH = re.compile(
    r"\b\d{1,4}(?:\s*(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|allée|allee|impasse|chemin"
    r"|quai|route|cours|passage|square|rond-point)\s+\w",
    re.IGNORECASE,
)
# Street first with the number after it (Spain, Italy, Portugal, Latin America): "Calle Mayor 5".
_STREET_THEN_NUMBER = re.compile(
    r"\b(?:calle|avenida|av\.|via|viale|piazza|corso|rua|carrer|plaza|paseo)\s+[^\W\d_][\w'’ .-]{1,40}?,?\s+"
    r"(?:n[º°o]\.?\s*)?\d{1,4}\b",
    re.IGNORECASE,
)
_PO_BOX = re.compile(
    r"\b(?:p\.?\s*o\.?\s*box|post\s+office\s+box|postfach|bo[iî]te\s+postale|apartado(?:\s+de\s+correos)?)"
    r"\s*(?:no\.?\s*|#\s*)?\d+",
    re.IGNORECASE,
)
# A full UK postcode ("NW1 6XE", "sw1a 1aa") narrows a reply to a handful of homes.
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[ABD-HJLNP-UW-Z]{2}\b", re.IGNORECASE)
_ADDRESS_RULES = (_HOUSE_FIRST, _FRENCH, _STREET_THEN_NUMBER, _PO_BOX, _UK_POSTCODE)


def _has_card(text: str) -> bool:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m[0])
        if 13 <= len(digits) <= 19 and entities.luhn_valid(digits):
            return True
    return False


# The fewest digits of a valid number in any region (libphonenumber's possible lengths; a test keeps it true).
SHORTEST_NUMBER = 4
# That many digits close enough to be one number as libphonenumber's matcher reads candidates: between two
# digits at most four characters that are not letters or digits (its punctuation), "x" (an extension) or the
# katakana long-vowel mark it takes for a dash. A superset of its candidates: texts without it are skipped.
_NUMBER_LIKE = re.compile(rf"\d(?:(?:[\W_xX\u30fc]){{0,4}}\d){{{SHORTEST_NUMBER - 1}}}")


def _has_phone(text: str, regions: Iterable[str]) -> bool:
    if not _NUMBER_LIKE.search(text):
        return False
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=Leniency.VALID):
            if phonenumbers.number_type(match.number) not in _BUSINESS_NUMBER_TYPES:
                return True
    return False


def _types_in(text: str, regions: Iterable[str]) -> set[str]:
    # The entity rules' own phone guess is replaced by libphonenumber's verdict.
    found = {e.type for e in entities.extract(text)} - {"phone"}
    if _EMAIL.search(text):
        found.add("email")
    if _has_card(text):
        found.add("payment_card")
    if any(rule.search(text) for rule in _ADDRESS_RULES):
        found.add("address")
    if _has_phone(text, regions):
        found.add("phone")
    return found


def sensitive_types(text: str, regions: Iterable[str] = ("US", "GB")) -> list[str]:
    """The sensitive entity types in `text`, each once, in SENSITIVE order."""
    return list(_sensitive_types(text, tuple(regions)))


# A bot's replies are mostly the knowledge base's answers, the same few texts again and again: each is read
# once (a few hundred microseconds of regular expressions), not once per reply.
@functools.lru_cache(maxsize=2048)
def _sensitive_types(text: str, regions: tuple[str, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for reading in readings(text):
        found |= _types_in(reading, regions)
    return tuple(t for t in SENSITIVE if t in found)
