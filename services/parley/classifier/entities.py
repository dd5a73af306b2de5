"""Rule-based entities with character spans: pure regular expressions, no statistical model on the hot path.

Patterns are tried in priority order and a span already claimed is never claimed again, so a Luhn-valid card
number is not also reported as a phone, and an email's domain is not also a URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entity:
    type: str
    text: str
    start: int
    end: int


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Airline designators seen in customer traffic; a bare "AB 123" elsewhere is too ambiguous to call a flight.
_AIRLINE_CODES = (
    "AA|UA|DL|WN|B6|AS|NK|F9|VX|US|HA|G4|SY|AC|WS|BA|VS|LH|AF|KL|EK|QR|EY|TK|IB|AZ|LX|OS|SK|AY|EI|FR|U2|"
    "QF|NZ|SQ|CX|JL|NH|KE|OZ|CI|BR|MU|CA|CZ|AI|6E|ET|SA|MS|LA|AV|CM|AM|W6|TP|LO|SN|UX|VY|DY|BE|LS|MH|TG|GA|PR"
)

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}(?![\w-])"
)
_ORDER = re.compile(
    r"\b(?:order|ord|purchase|tracking|booking|confirmation|reservation|ref(?:erence)?|case|ticket)"
    r"(?:\s+(?:number|no\.?|num|code|id|#))?\s*(?:is\s+)?[:#]?\s*(#?[A-Z0-9][A-Z0-9-]{3,24})\b"
    r"|(?<![\w#&])(#\d{4,12})\b",
    re.IGNORECASE,
)
_ACCOUNT = re.compile(
    r"\b(?:account|acct|a/c|customer|member(?:ship)?|loyalty|frequent flyer)"
    r"\s+(?:number|no\.?|num|#|id)\s*(?:is\s+)?[:#]?\s*([A-Z]{0,3}\d[\d -]{4,18}\d)\b",
    re.IGNORECASE,
)
# Designators are matched case-sensitively (capitals, like "UA 123") and then looked up; the word "flight"
# introduces a number in any case.
_CODES = frozenset(_AIRLINE_CODES.split("|"))
_DESIGNATED = re.compile(r"\b([A-Z0-9]{2})\s?\d{1,4}\b(?!\s*(?i:am|pm|min|hrs?|hours?|%|kg|lbs?)\b)")
_FLIGHT = re.compile(r"\bflight\s*(?:number|no\.?|#)?\s*#?((?:[A-Z0-9]{2}\s?)?\d{1,4})\b", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@.])@\w{1,30}\b")
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Terrace|Close"
    r"|Crescent)"
    r"\b\.?(?:,\s*(?:Apt|Flat|Unit|Suite)\.?\s*\w+)?(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)?"
    r"(?:,?\s*(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}))?"
)


# A digit in a word that is not a handle: social platforms anonymise customers as numeric handles ("@115873"),
# which hold no other entity.
_ANY_DIGIT = re.compile(r"\d")
_DIGIT_OUTSIDE_HANDLE = re.compile(r"(?:^|[^@\w])\w*\d")


_NON_DIGIT = re.compile(r"\D+")
_ACCOUNT_CUES = ("account", "acct", "a/c", "customer", "member", "loyalty", "frequent flyer")
_ORDER_CUES = (
    "#",
    "ord",
    "purchase",
    "tracking",
    "booking",
    "confirmation",
    "reservation",
    "ref",
    "case",
    "ticket",
)


def _numbered(text: str, lower: str, add: Callable[[str, int, int], None]) -> None:
    """The entities that contain digits, in priority order; each pattern runs only when its cue is present."""
    n_digits = len(_NON_DIGIT.sub("", text))
    if n_digits >= 13:
        for m in _CARD.finditer(text):
            digits = _digits(m.group())
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                add("payment_card", m.start(), m.end())
    if any(cue in lower for cue in _ACCOUNT_CUES):
        for m in _ACCOUNT.finditer(text):
            add("account_number", m.start(1), m.end(1))
    if any(cue in lower for cue in _ORDER_CUES):
        for m in _ORDER.finditer(text):
            group = 1 if m.group(1) else 2
            value = m.group(group)
            if any(ch.isdigit() for ch in value):
                add("order_number", m.start(group), m.end(group))
    for m in _DESIGNATED.finditer(text):
        if m.group(1) in _CODES:
            add("flight_number", m.start(), m.end())
    if "flight" in lower:
        for m in _FLIGHT.finditer(text):
            add("flight_number", m.start(1), m.end(1))
    for m in _ADDRESS.finditer(text):
        add("address", m.start(), m.end())
    if n_digits >= 7:
        for m in _PHONE.finditer(text):
            if 7 <= len(_digits(m.group())) <= 15:
                add("phone", m.start(), m.end())


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def extract(text: str) -> list[Entity]:
    """All entities in `text`, sorted by start offset, with no two spans overlapping."""
    # Every pattern needs a cue; most messages hold handles at most, which cannot overlap one another.
    lower = text.lower()
    web = "http" in lower or "www." in lower
    at = "@" in text
    mail = at and "." in text
    numbered = _ANY_DIGIT.search(text) is not None and _DIGIT_OUTSIDE_HANDLE.search(text) is not None
    if not (web or mail or numbered):
        return [Entity("handle", m.group(), m.start(), m.end()) for m in _HANDLE.finditer(text)] if at else []

    found: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if start < end and all(end <= s or start >= e for s, e in taken):
            taken.append((start, end))
            found.append(Entity(kind, text[start:end], start, end))

    if web:
        for m in _URL.finditer(text):
            add("url", m.start(), m.end())
    if mail:
        for m in _EMAIL.finditer(text):
            add("email", m.start(), m.end())
    if numbered:
        _numbered(text, lower, add)
    if at:
        for m in _HANDLE.finditer(text):
            add("handle", m.start(), m.end())
    found.sort(key=lambda e: e.start)
    return found
