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
# Starts with the literal "@" so the scan jumps from "@" to "@"; the character before is checked in code.
_HANDLE = re.compile(r"@\w{1,30}\b")


def _mail_cue(text: str) -> bool:
    """An email needs a word character right before its "@" (a handle has a space or nothing there) and a
    dot after it."""
    i = text.find("@", 1)
    while i > 0:
        before = text[i - 1]
        if (before.isalnum() or before in "._%+-") and "." in text[i:]:
            return True
        i = text.find("@", i + 1)
    return False


# Addresses with the house number first (US, UK, Ireland, Australia): number, capitalised street words or
# an ordinal ("5th"), a street type, then optionally a unit, a town and a ZIP code or UK postcode. Street
# types that are also ordinary words ("Court", "Way", "Park") count only when a ZIP or postcode follows.
_STREET_WORDS = r"(?:(?:[A-Z][a-z]+|\d{1,3}(?:st|nd|rd|th)|[NSEW]\.?)\s+){1,4}"
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"
# A unit, then up to two capitalised place names (town, state) after a comma or a line break.
_ADDRESS_TAIL = (
    r"\.?(?:,\s*(?:Apt|Flat|Unit|Suite)\.?\s*\w+)?"
    r"(?:(?:,[ \t]*|[ \t]*\n[ \t]*)[A-Z][a-z]+(?: [A-Z][a-z]+)?){0,2}"
)
_POSTAL = rf"(?:,?\s*(?:[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?|\d{{5}}(?:-\d{{4}})?|{_UK_POSTCODE}))"
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?\s+{_STREET_WORDS}"
    r"(?:(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Terrace|Crescent|Highway|Hwy|Parkway|Pkwy"
    rf"|Square|Sq)\b{_ADDRESS_TAIL}{_POSTAL}?"
    rf"|(?:Drive|Dr|Way|Court|Ct|Place|Pl|Close|Row|Mews|Gardens|Park|Hill|Grove|Walk){_ADDRESS_TAIL}{_POSTAL}\b)"
)
# Addresses with the street first (Germany, Austria, Switzerland, the Netherlands, ...): "Hauptstraße 5",
# "Berliner Allee 12a", then optionally a postcode ("10115", "1015 CJ") and a town. A street word alone
# ("Allee 5") needs a capitalised word before it or a postcode after it.
_CAP = r"[A-ZÄÖÜ][a-zäöüß]+"
_STREET_FIRST = re.compile(
    rf"\b(?:{_CAP}(?:straße|strasse|str\.|weg|platz|allee|gasse|ufer|damm|straat|gracht|laan|plein)"
    rf"|(?:{_CAP}[ -])+(?:Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse|Ring|Damm|Ufer|Chaussee|Markt|Straat"
    r"|Laan|Gracht|Plein))"
    rf"\s+\d{{1,4}}[a-z]?\b(?:,?\s+(?:\d{{4}}\s?[A-Z]{{2}}|\d{{4,5}})\s+{_CAP}(?:[ -]{_CAP})?)?"
)
_STREET_FIRST_CUES = (
    "str",
    "weg",
    "platz",
    "allee",
    "gasse",
    "ring",
    "damm",
    "ufer",
    "chaussee",
    "markt",
    "laan",
    "gracht",
    "plein",
)

# An IBAN: country code, two check digits, then up to 30 letters and digits, often in groups of four.
# Only the lengths of the countries below are accepted, and the mod-97 checksum must hold.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_IBAN_CUE = re.compile(r"[A-Z]{2}\d{2}")
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "AE": 23, "SA": 24, "TR": 26, "IL": 23,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """True for an IBAN of a known country with the right length and a valid mod-97 checksum."""
    compact = iban.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


# A digit in a word that is not a handle: social platforms anonymise customers as numeric handles ("@115873"),
# which hold no other entity.
_ANY_DIGIT = re.compile(r"\d")
_AT_WORD = re.compile(r"@\w+")


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


# One scan per cue list instead of one substring test per cue.
_ACCOUNT_CUE = re.compile("|".join(map(re.escape, _ACCOUNT_CUES)))
_ORDER_CUE = re.compile("|".join(map(re.escape, _ORDER_CUES)))
_STREET_FIRST_CUE = re.compile("|".join(_STREET_FIRST_CUES))


def _numbered(text: str, lower: str, add: Callable[[str, int, int], None]) -> None:
    """The entities that contain digits, in priority order; each pattern runs only when its cue is present."""
    n_digits = len(_NON_DIGIT.sub("", text))
    # IBANs first: their digit groups would otherwise pass for a card or phone number.
    if n_digits >= 10 and _IBAN_CUE.search(text):
        for m in _IBAN.finditer(text):
            if iban_valid(m.group()):
                add("iban", m.start(), m.end())
    if n_digits >= 13:
        for m in _CARD.finditer(text):
            digits = _digits(m.group())
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                add("payment_card", m.start(), m.end())
    if _ACCOUNT_CUE.search(lower):
        for m in _ACCOUNT.finditer(text):
            add("account_number", m.start(1), m.end(1))
    if _ORDER_CUE.search(lower):
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
    if _STREET_FIRST_CUE.search(lower):
        for m in _STREET_FIRST.finditer(text):
            add("address", m.start(), m.end())
    if n_digits >= 7:
        for m in _PHONE.finditer(text):
            if 7 <= len(_digits(m.group())) <= 15:
                add("phone", m.start(), m.end())


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _handles(text: str) -> list[Entity]:
    """Handles: "@" plus word characters, not preceded by a word character, "@" or "." (an email's "@")."""
    out = []
    for m in _HANDLE.finditer(text):
        start = m.start()
        before = text[start - 1] if start else " "
        if not (before.isalnum() or before in "_@."):
            out.append(Entity("handle", m.group(), start, m.end()))
    return out


def extract(text: str) -> list[Entity]:
    """All entities in `text`, sorted by start offset, with no two spans overlapping."""
    # Every pattern needs a cue; most messages hold handles at most, which cannot overlap one another.
    lower = text.lower()
    web = "http" in lower or "www." in lower
    at = "@" in text
    mail = at and _mail_cue(text)
    numbered = _ANY_DIGIT.search(text) is not None and (
        not at or _ANY_DIGIT.search(_AT_WORD.sub(" ", text)) is not None
    )
    if not (web or mail or numbered):
        return _handles(text) if at else []

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
        for e in _handles(text):
            add("handle", e.start, e.end)
    found.sort(key=lambda e: e.start)
    return found
