"""Rule-based entities with character spans: pure regular expressions, no statistical model on the hot path.

Patterns are tried in priority order and a span already claimed is never claimed again, so a Luhn-valid card
number is not also reported as a phone, and an email's domain is not also a URL.

Each pattern runs only on messages holding its cue. `extract_many`, for batches, finds the cues and the
handles of all its messages in one pass over the whole batch each, the cues around digits with array
operations; it returns exactly what `extract` returns message by message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from parley.classifier import batch


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, which doubles the cost
# of the one or two entities most messages carry. Nothing changes an entity once made.
@dataclass(slots=True)
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
# A phone number has at least 7 digits, and at most two of " ().-" between one digit and the next.
_PHONE_CUE = re.compile(r"\d(?:[ ().-]{0,2}\d){6}")
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
# Every code holds a capital letter, followed by a digit at most one whitespace character later ("UA 1",
# "UA1", and in "B6 1" the code's own digit): a designator can only be found where this cue occurs.
_DESIGNATED_CUE = re.compile(r"[A-Z]\s?\d")
_FLIGHT = re.compile(r"\bflight\s*(?:number|no\.?|#)?\s*#?((?:[A-Z0-9]{2}\s?)?\d{1,4})\b", re.IGNORECASE)
# "@" plus word characters, not after a word character, "@" or "." (an email's "@"). That check follows the
# "@", so that the scan jumps from "@" to "@".
_HANDLE = re.compile(r"@(?<![\w@.]@)\w{1,30}\b")


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
# A house number, then whitespace and the first street word (a capital letter or an ordinal's digit).
_ADDRESS_CUE = re.compile(r"\d[A-Za-z]?\s+[A-Z\d]")
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
# Every street word of _STREET_FIRST, lower-cased, and the whitespace and digit that follow it.
_STREET_NUMBER_CUE = re.compile(
    r"(?:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm|ufer|chaussee|markt|straat|laan|gracht|plein)\s+\d"
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
# A card number: 13 digits or more, with at most one space or dash between one digit and the next.
_CARD_CUE = re.compile(r"\d(?:[ -]?\d){12}")


class _Cues(NamedTuple):
    """How many digits a message holds, and whether each digit pattern's cue occurs in it."""

    n_digits: int
    iban: bool
    card: bool
    designated: bool
    address: bool
    phone: bool


def _cues(text: str) -> _Cues:
    """The cues of one text (those of patterns that need more digits than it has are not looked for)."""
    n_digits = len(_NON_DIGIT.sub("", text))
    return _Cues(
        n_digits,
        n_digits >= 10 and _IBAN_CUE.search(text) is not None,
        n_digits >= 13 and _CARD_CUE.search(text) is not None,
        _DESIGNATED_CUE.search(text) is not None,
        _ADDRESS_CUE.search(text) is not None,
        n_digits >= 7 and _PHONE_CUE.search(text) is not None,
    )


def _numbered(text: str, lower: str, cues: _Cues, add: Callable[[str, int, int], None]) -> None:
    """The entities that contain digits, in priority order; each pattern runs only when its cue is present."""
    n_digits = cues.n_digits
    # IBANs first: their digit groups would otherwise pass for a card or phone number.
    if n_digits >= 10 and cues.iban:
        for m in _IBAN.finditer(text):
            if iban_valid(m.group()):
                add("iban", m.start(), m.end())
    if n_digits >= 13 and cues.card:
        for m in _CARD.finditer(text):
            digits = _digits(m.group())
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                add("payment_card", m.start(), m.end())
    # Both patterns start at one of their cue words (or "#"). In ASCII text, where lower-casing keeps every
    # character in place and ignoring case matches nothing else, their scan can start at the first cue.
    ascii_text = text.isascii()
    account_cue = _ACCOUNT_CUE.search(lower)
    if account_cue:
        for m in _ACCOUNT.finditer(text, account_cue.start() if ascii_text else 0):
            add("account_number", m.start(1), m.end(1))
    order_cue = _ORDER_CUE.search(lower)
    if order_cue:
        for m in _ORDER.finditer(text, order_cue.start() if ascii_text else 0):
            group = 1 if m.group(1) else 2
            value = m.group(group)
            if any(ch.isdigit() for ch in value):
                add("order_number", m.start(group), m.end(group))
    if cues.designated:
        for m in _DESIGNATED.finditer(text):
            if m.group(1) in _CODES:
                add("flight_number", m.start(), m.end())
    if "flight" in lower:
        for m in _FLIGHT.finditer(text):
            add("flight_number", m.start(1), m.end(1))
    if cues.address:
        for m in _ADDRESS.finditer(text):
            add("address", m.start(), m.end())
    # Substring tests: with thirteen cues starting with common letters, they cost less than one scan; the
    # scan for a street word followed by a house number then spares most texts the pattern's backtracking.
    if any(cue in lower for cue in _STREET_FIRST_CUES) and _STREET_NUMBER_CUE.search(lower):
        for m in _STREET_FIRST.finditer(text):
            add("address", m.start(), m.end())
    if n_digits >= 7 and cues.phone:
        for m in _PHONE.finditer(text):
            if 7 <= len(_digits(m.group())) <= 15:
                add("phone", m.start(), m.end())


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _handles(text: str) -> list[Entity]:
    return [Entity("handle", m.group(), m.start(), m.end()) for m in _HANDLE.finditer(text)]


def extract(text: str) -> list[Entity]:
    """All entities in `text`, sorted by start offset, with no two spans overlapping."""
    at = "@" in text
    mail = at and _mail_cue(text)
    numbered = _ANY_DIGIT.search(_AT_WORD.sub(" ", text) if at else text) is not None
    return _extract(text, mail, numbered, None, _handles(text) if at else [])


def _extract(
    text: str, mail: bool, numbered: bool, cues: _Cues | None, handles: list[Entity]
) -> list[Entity]:
    """`extract`, given whether the text has the cue of an email, whether it has a digit outside handles,
    the cues of its digit patterns (None: not looked for yet) and its handles."""
    # Every pattern needs a cue; most messages hold handles at most, which cannot overlap one another.
    lower = text.lower()
    web = "http" in lower or "www." in lower
    if not (web or mail or numbered):
        return handles

    found: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if start < end and all(end <= s or start >= e for s, e in taken):
            taken.append((start, end))
            found.append(Entity(kind, text[start:end], start, end))

    if web:
        for m in _URL.finditer(text, _url_scan_start(text, lower)):
            add("url", m.start(), m.end())
    if mail:
        for m in _EMAIL.finditer(text):
            add("email", m.start(), m.end())
    if numbered:
        _numbered(text, lower, cues or _cues(text), add)
    if not found:
        return handles
    # Handles never overlap one another: each needs checking against the other entities only.
    found.extend(e for e in handles if all(e.end <= start or e.start >= end for start, end in taken))
    found.sort(key=lambda e: e.start)
    return found


def _url_scan_start(text: str, lower: str) -> int:
    """Where the scan for URLs can start: the first "http" or "www." of the lower-cased text (the letters of
    both match only themselves and their capitals, even ignoring case), when lower-casing left every
    character in place."""
    if len(lower) != len(text):
        return 0
    return min(i for i in (lower.find("http"), lower.find("www.")) if i >= 0)


# The cue of `_mail_cue` in a batch joined by batch.SEP (whitespace: no cue matches across it), then the rest
# of its message (so one hit per message at most). The check on the character before the "@" follows it, so
# that the scan can jump from "@" to "@".
_MAIL_CUE_TO_END = re.compile(rf"@(?<=(?:[^\W_]|[.%+-])@)[^{batch.SEP}]*\.[^{batch.SEP}]*")


def extract_many(texts: Sequence[str]) -> list[list[Entity]]:
    """`[extract(t) for t in texts]`, with the cues that decide which patterns each message needs, and its
    handles, found in one pass over the whole batch each."""
    joined = batch.join(texts)
    if joined is None:
        return [extract(t) for t in texts]
    ends = batch.ends(texts, 1)
    mail = np.zeros(len(texts), dtype=bool)
    mail[batch.owners(ends, [m.start() for m in _MAIL_CUE_TO_END.finditer(joined)])] = True
    numbered, cues = _batch_cues(joined, ends)
    return list(
        map(
            _extract,
            texts,
            mail.tolist(),
            numbered,
            cues,
            _batch_handles(joined, ends),
        )
    )


def _batch_handles(joined: str, ends: np.ndarray) -> list[list[Entity]]:
    """`_handles` of each of the texts joined by batch.SEP, which end at `ends` in `joined`."""
    out: list[list[Entity]] = [[] for _ in range(len(ends))]
    # The separator before a text is no word character, "@" or ".", just like the start of a text.
    found = [(m.start(), m.group()) for m in _HANDLE.finditer(joined)]
    if found:
        starts = [0, *ends[:-1].tolist()]
        which = batch.owners(ends, [start for start, _ in found])
        for i, (start, handle) in zip(which.tolist(), found, strict=True):
            start -= starts[i]
            out[i].append(Entity("handle", handle, start, start + len(handle)))
    return out


# The character classes the cues need, as bits of one number per ASCII character: \d, \s, \w, [A-Z],
# [A-Za-z], and what a phone or a card number may hold between two of its digits. NUL is in none of them.
_DIGIT, _SPACE, _WORD, _CAPITAL, _LETTER, _PHONE_GAP, _CARD_GAP = (1 << i for i in range(7))
_ASCII_CLASSES = np.array(
    [
        _DIGIT * c.isdecimal()
        | _SPACE * c.isspace()
        | _WORD * (c.isalnum() or c == "_")
        | _CAPITAL * c.isupper()
        | _LETTER * c.isalpha()
        | _PHONE_GAP * (c in " ().-")
        | _CARD_GAP * (c in " -")
        for c in map(chr, range(128))
    ],
    dtype=np.uint8,
)
# Beyond ASCII only \d, \s and \w hold for some characters.
_OTHER_CLASSES = ((_DIGIT, str.isdecimal), (_SPACE, str.isspace), (_WORD, str.isalnum))
# The airline codes as numbers: 128 times the first character's code plus the second's.
_CODE_PAIRS = np.array([ord(code[0]) * 128 + ord(code[1]) for code in _CODES])


def _batch_cues(joined: str, ends: np.ndarray) -> tuple[list[bool], list[_Cues | None]]:
    """For each of the texts joined by batch.SEP, which end at `ends`: whether it has a digit outside handles,
    and if so the cues of its digit patterns (else None).

    The cues of `_cues` are looked for with array operations over the whole batch, around its digits only
    (the designator's more strictly: a known code at the start of a word; the address's more loosely: after
    two whitespace characters anything goes). They are only ever looser than the patterns they stand for; the
    separator, being whitespace, can add cues to the text before it but never hide one.
    """
    codes = batch.code_points(joined)
    size, n = len(codes), len(ends)
    # Three NULs (in no class) after the end, so that looking up to three characters ahead stays in the array.
    ascii_codes = np.concatenate([np.where(codes < 128, codes, 0), np.zeros(3, dtype=np.uint32)])
    classes = _ASCII_CLASSES[ascii_codes]
    beyond = np.flatnonzero(codes >= 128)
    if len(beyond):
        others = codes[beyond]
        distinct = [chr(c) for c in np.unique(others).tolist()]
        for bit, holds in _OTHER_CLASSES:
            members = [ord(c) for c in distinct if holds(c)]
            if members:
                classes[beyond[np.isin(others, members)]] |= bit

    def has(bit: int, at: np.ndarray) -> np.ndarray:
        """Whether the characters at `at` are in the class(es) of `bit`."""
        found: np.ndarray = (classes[at] & bit) > 0
        return found

    def texts_with(positions: np.ndarray) -> list[bool]:
        """Per text, whether some of `positions` falls in it."""
        found = np.zeros(n, dtype=bool)
        found[batch.owners(ends, positions)] = True
        return found.tolist()

    at_digit = np.flatnonzero(classes[:size] & _DIGIT)
    text_of_digit = batch.owners(ends, at_digit)
    # A digit is in a handle when the last character before it that is not a word character is an "@".
    not_word = np.flatnonzero((classes & _WORD) == 0)  # the padding included: never empty
    last_not_word = not_word[np.maximum(np.searchsorted(not_word, at_digit) - 1, 0)]
    in_handle = (last_not_word < at_digit) & (ascii_codes[last_not_word] == ord("@"))
    numbered = np.zeros(n, dtype=bool)
    numbered[text_of_digit[~in_handle]] = True

    # Where each cue starts, as positions before or at a digit.
    designated = []  # a known airline code starting a word, then the digit, maybe after one whitespace
    for code_to_digit in (2, 3):
        at = at_digit[at_digit >= code_to_digit] - code_to_digit
        if code_to_digit == 3:
            at = at[has(_SPACE, at + 2)]
        code = ascii_codes[at] * 128 + ascii_codes[at + 1]
        word_before = (at > 0) & has(_WORD, np.maximum(at - 1, 0))
        designated.append(at[np.isin(code, _CODE_PAIRS) & ~word_before])
    at = at_digit[at_digit >= 2] - 2
    iban = at[has(_CAPITAL, at) & has(_CAPITAL, at + 1) & has(_DIGIT, at + 3)]
    # A house number, maybe one letter, then whitespace and a capital or a digit (or more whitespace).
    address = []
    for first_space in (1, 2):
        at = at_digit[has(_SPACE, at_digit + first_space)]
        if first_space == 2:
            at = at[has(_LETTER, at + 1)]
        address.append(at[has(_CAPITAL | _DIGIT | _SPACE, at + first_space + 1)])
    # Phone and card numbers: chains of digits, each within the allowed gap of the one before.
    gap = np.diff(at_digit) - 1
    after = at_digit[:-1] + 1
    phone_link = (gap == 0) | ((gap == 1) & has(_PHONE_GAP, after))
    phone_link |= (gap == 2) & has(_PHONE_GAP, after) & has(_PHONE_GAP, after + 1)
    card_link = (gap == 0) | ((gap == 1) & has(_CARD_GAP, after))

    def chains(link: np.ndarray, digits: int) -> np.ndarray:
        """Where a chain of `digits` digits starts."""
        if len(at_digit) < digits:
            return at_digit[:0]
        links = np.concatenate([[0], np.cumsum(link)])
        return at_digit[np.flatnonzero(links[digits - 1 :] - links[: len(links) - digits + 1] == digits - 1)]

    rows = zip(
        np.bincount(text_of_digit, minlength=n).tolist(),
        texts_with(iban),
        texts_with(chains(card_link, 13)),
        texts_with(np.concatenate(designated)),
        texts_with(np.concatenate(address)),
        texts_with(chains(phone_link, 7)),
        strict=True,
    )
    flags = numbered.tolist()
    return flags, [_Cues(*row) if free else None for free, row in zip(flags, rows, strict=True)]
