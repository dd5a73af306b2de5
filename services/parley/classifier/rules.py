"""Urgency rules: named, precise patterns that may raise a message's intent to `urgent`, never lower it.

Each rule is a set of trigger patterns, optionally a second set that must also match (a time-pressure cue for
"stranded"), and guards that veto a match (figures of speech such as "this app is killing me").
Every rule that fires is reported with the text that triggered it.

Each rule also lists `cues`: words (or word prefixes) one of which every trigger match contains. Looking the
message's words up in a table of cues tells which rules can fire at all, so the detailed patterns run only on
the few messages, and for the few rules, that need them.

`urgency_many`, for batches, goes further: one Hyperscan pass over the whole batch, with every trigger
compiled in prefilter mode (a superset of what the pattern matches), tells which rules can fire on which
messages; the Python patterns confirm only those. Messages the prefilter cannot read exactly enough (see
`_scannable`) take the cue path. `urgency_full` skips nothing; training checks that all three agree on every
row.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hyperscan
import numpy as np

from parley.classifier import batch


@dataclass(frozen=True)
class Rule:
    name: str
    # Space-separated words (ending in "$") or word prefixes; every trigger match contains one.
    cues: str
    triggers: tuple[re.Pattern[str], ...]
    also: tuple[re.Pattern[str], ...] = ()
    guards: tuple[re.Pattern[str], ...] = field(default=())
    # One alternation per list: a single scan of the text instead of one per pattern.
    _trigger: re.Pattern[str] = field(init=False, repr=False)
    _also: re.Pattern[str] | None = field(init=False, repr=False)
    _guard: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_trigger", _any(self.triggers))
        object.__setattr__(self, "_also", _any(self.also) if self.also else None)
        object.__setattr__(self, "_guard", _any(self.guards) if self.guards else None)

    def match(self, text: str) -> str | None:
        """The triggering text if this rule fires on `text`, else None."""
        m = self._trigger.search(text)
        if m is None:
            return None
        if self._also is not None and self._also.search(text) is None:
            return None
        if self._guard is not None and self._guard.search(text):
            return None
        return m.group(0)


def _any(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.IGNORECASE)


def _p(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


_NEG = r"(?:didn'?t|did not|never|don'?t|do not|wasn'?t|was not)"
_MONEY_EVENT = r"(?:charges?|transactions?|payments?|purchases?|withdrawals?|debits?|transfers?|orders?)"

RULES: tuple[Rule, ...] = (
    Rule(
        "account_takeover",
        (
            "hack compromis taken$ took$ stol breach someone somebody unauthori suspicious$ unknown$ "
            "changed$ "
            "hijack away$ robaron hackearon jaquearon cuenta$ compte$ piratage$ gehackt$ conta$ "
            "~乗っ取 ~不正アクセス ~不正ログイン"
        ),
        _p(
            r"\b(?:account|profile|email|instagram|facebook|page)\b[^.!?]{0,30}\b(?:was|has been|got|gotten"
            r"|been|is)\s+"
            r"(?:hacked|compromised|taken over|stolen|breached|took|taken(?!\s+(?:down|off|away from)))\b",
            r"\bhacked\s+(?:my|into my|our)\b",
            r"\b(?:i(?:'ve| have)?|we(?:'ve| have)?)\s+(?:been|got|was)\s+hacked\b",
            # A phone number ported away to someone else (SIM swap): every code sent by text goes to them.
            r"\b(?:steal|stole|stolen)\b[^.!?]{0,20}\bmy\s+(?:phone\s+|cell\s+)?number\b",
            # The same in the other languages customers most often write to brands in.
            r"\b(?:me\s+)?(?:robaron|hackearon|jaquearon)|\bcuenta\s+(?:fue\s+)?(?:hackeada|robada"
            r"|pirateada)\b",
            r"\bcompte\s+(?:a été\s+)?(?:piraté|pirate|hacké)|\bpiratage\b|\bgehackt\b",
            r"\bconta\s+(?:foi\s+)?(?:hackeada|invadida|roubada)\b|乗っ取|不正(?:アクセス|ログイン)",
            r"\b(?:gave|give|given)\s+(?:away\s+)?my\s+(?:phone\s+|cell\s+)?number\s+away\b"
            r"|\bgave\s+away\s+my\s+(?:phone\s+|cell\s+)?number\b",
            r"\bsome(?:one|body)\s+(?:has\s+)?(?:logged|log|got|get|broke|hacked|signed)\s+(?:in(?:to)?"
            r"|on to)\s+(?:my|our)\s+account",
            r"\bsome(?:one|body)\b[^.!?]{0,40}\bchanged\s+(?:my|the)\s+"
            r"(?:email|password|phone number|login|pin)",
            r"\bsome(?:one|body)\s+(?:has\s+)?(?:got|gotten|get|gets)\s+(?:in)?to\s+(?:my|our)\s+account",
            r"\b(?:unauthori[sz]ed|suspicious|unknown)\s+(?:log ?ins?|sign[- ]ins?|access|logins?)\b",
            r"\bchanged my (?:email|password)[^.!?]{0,30}(?:without|wasn'?t me|not me)",
            r"\b(?:account|profile|page)\b[^.!?]{0,30}\bhijack\w*|\bhijacked\b",
            r"\bsome(?:one|body)\s+(?:keeps?\s+)?(?:trying to\s+)?(?:buy|order|purchas|us"
            r"|spend)\w*\b[^.!?]{0,40}\b(?:on|with|from) my account",
        ),
    ),
    Rule(
        "fraud_charges",
        (
            "unauthori fraud unrecogni unknown$ suspicious$ make made authori recogni place scam stol "
            "taken$ phish cyber theft$ charged$ billed$ fraude$ betrug$ quelqu cargo cobro compra "
            "prélèvement achat paiement abbuchung ~不正 ~覚えのない ~詐欺"
        ),
        _p(
            rf"\b(?:unauthori[sz]ed|fraudulent|unrecogni[sz]ed|unknown|suspicious)\s+(?:card\s+)?{_MONEY_EVENT}",
            rf"\b{_MONEY_EVENT}\b[^.!?]{{0,40}}\b(?:i|we)\s+{_NEG}\s+(?:make|made|authori[sz]e|recogni[sz]e|place)",
            rf"\b(?:i|we)\s+(?:don'?t|do not|didn'?t)\s+recogni[sz]e\b[^.!?]{{0,30}}{_MONEY_EVENT}",
            r"\b(?:fraud|scam(?:med)?)\b[^.!?]{0,30}\b(?:on|from|with)\s+my\s+(?:account|card|bank)",
            r"\b(?:victim of|report(?:ing)?(?: a)?)\s+fraud\b",
            r"\bmoney\s+(?:was|has been|got)\s+(?:stolen|taken)\b",
            r"\b(?:charged|charging|billed|debited|used)\s+fraudulently\b|\bfraudulently\s+(?:charged|used"
            r"|debited)\b",
            r"\b(?:scammed|phishing|cyber ?crime|identity theft)\b",
            r"\b(?:fraude|betrug)\b|\bquelqu'?un\s+a\s+(?:payé|payer|utilisé|acheté|pris)\b",
            r"\b(?:cargos?|cobros?|compras?)\s+(?:que\s+)?n[oã]o?\s+(?:reconozco|realic[eé]|autoric[eé]|hice"
            r"|fiz|reconhe[cç]o)\b",
            r"\b(?:prélèvements?|achats?|paiements?)\s+(?:frauduleux|non autorisés?)"
            r"|\babbuchung\w*\s+die ich nicht",
            r"不正(?:利用|請求)|身に覚えのない|覚えのない(?:注文|請求|購入|引き落とし)|した覚えのない|詐欺",
            # Charged for a subscription the customer never took out.
            r"\b(?:charged|billed)\b[^.!?]{0,40}\b(?:i|and)\s+(?:didn'?t|did not|never)\s+"
            r"(?:sign(?:ed)? up|subscribe[ds]?|authori[sz]e[ds]?)\b",
        ),
    ),
    Rule(
        # A purchase, booking or receipt for something the customer never bought: their details are in use.
        "unrecognised_purchase",
        "ordered$ bought$ purchased$ flown$ booked$ signed$ subscribed$ placed$",
        _p(
            r"\b(?:i|we)(?:'ve| have)?\s+never\s+(?:\w+\s+)?(?:ordered|bought|purchased|flown|booked"
            r"|signed up|subscribed|placed)\b"
        ),
        also=_p(
            r"\b(?:charge[ds]?|receipts?|confirmations?|purchases?|payments?|billed|bills?|invoices?"
            r"|debit(?:ed)?|my card|my account|transactions?)\b"
        ),
    ),
    Rule(
        "card_compromised",
        "stol compromis clon skim lost someone somebody freeze$ block$ cancel",
        _p(
            r"\b(?:card|wallet|purse|bank card|credit card|debit card)\b[^.!?]{0,20}\b(?:was|has been|got"
            r"|is|been)\s+(?:stolen|compromised|cloned|skimmed|lost)",
            r"\b(?:lost|stolen)\s+(?:my|our)\s+(?:card|wallet|purse|phone with)",
            r"\bsome(?:one|body)\s+(?:stole|has|took|is using|used)\s+my\s+(?:card|card details|wallet)",
            r"\b(?:freeze|block|cancel)\s+my\s+(?:card|account)\s+(?:now|immediately|asap|right now"
            r"|urgently)",
        ),
    ),
    Rule(
        "safety_health",
        (
            "glass$ metal$ plastic$ blade$ needle$ bug$ insect$ cockroach$ roach$ mouse$ rat$ worm$ "
            "mold$ mould$ poisoning$ allerg anaphyla salmonella$ coli$ ecoli$ injured$ injury$ "
            "bleeding$ concussion$ broke$ cut$ burn$ burned$ burnt$ fire$ exploded$ explosion$ smoke$ "
            "sparking$ shock$ leak$ monoxide$ hospital$ a&e$ er$ emergency$ unsafe$ dangerous$ "
            "choking$ choked$ breathe$ insulin$ medication$ pain$ passed$ fainted$ unconscious$ "
            "seizure$ heart$ stroke$ breathing$ epipen$ nut$ cashew peanut tree$ sesame$ shellfish$ "
            "safety$ safe$ died$ killed$"
        ),
        _p(
            r"\b(?:glass|metal|plastic|blade|needle|bug|insect|cockroach|roach|mouse|rat|worm|mou?ld)\b"
            r"[^.!?]{0,25}\b(?:in|inside)\s+(?:my|the|our|his|her)\s+(?:food|meal|sandwich|drink|burger"
            r"|salad|order|bowl|burrito|pizza|coffee|soup|bag)",
            r"\b(?:food poisoning|allergic reaction|anaphyla\w+|salmonella|e\.? ?coli)\b",
            r"\b(?:injured|injury|bleeding|concussion|broke (?:my|his|her) (?:arm|leg|wrist|ankle))\b",
            r"\b(?:cut|burn(?:ed|t)?)\s+(?:my|his|her|their)\s+(?:mouth|hand|finger|lip|tongue|face|arm|leg)",
            r"\b(?:caught fire|on fire|exploded|explosion|smoke (?:coming|pouring)|sparking|electric shock|"
            r"gas leak|carbon monoxide)\b",
            r"\b(?:went|taken|rushed|ended up)\s+(?:to|in)\s+(?:the\s+)?(?:hospital|a&e|er|emergency room)\b",
            r"\b(?:unsafe|dangerous)\s+(?:driver|driving|car|ride|conditions?|product|aircraft|plane)\b",
            r"\b(?:choking|choked|can'?t breathe|medical emergency|need (?:my )?(?:insulin|medication))\b",
            r"\b(?:in (?:severe |so much |a lot of )?pain|passed out|fainted|unconscious|seizure"
            r"|heart attack|stroke|not breathing)\b",
            r"\b(?:allergic|allergy|allergies|allergen|epipen|nut[- ]free)\b",
            # A safety concern about crew, vehicles or premises ("pilot on his phone during checks. Safety?").
            r"\bsafety\s*\?|\bthink (?:about|of) (?:the )?(?:\w+\s+)?safety\b|\bsafety (?:concern|risk"
            r"|issue)s?\b",
            r"\bnot safe\b|\b(?:nearly|almost) (?:died|killed)\b",
            # An allergen in food that should not hold it ("since when does the curry have cashews in it?").
            r"\b(?:cashews?|peanuts?|tree nuts?|sesame|shellfish)\b[^.!?]{0,40}\bin (?:it|this|my|the)\b",
        ),
        guards=_p(
            r"\b(?:lol|lmao|haha)\b[^.!?]{0,10}$",
            r"\bon fire\b[^.!?]{0,20}(?:today|tonight|lately|🔥)",
            r"\binsult to injury\b",
        ),
    ),
    Rule(
        "legal_threat",
        (
            "lawyer attorney solicitor sue$ suing$ taking$ lawsuit$ legal$ action$ claims$ court$ "
            "fca$ ftc$ cfpb$ ofcom$ ofgem$ ombudsman$ bbb$ bureau$ standards$ dot$ faa$ regulator "
            "fcc$ cma$ ico$ consumer$ press$ media$ news$ newspaper journalist reporter bbc$ cnn$ "
            "papers$ nyt$ what$"
        ),
        _p(
            r"\b(?:my|our|contact(?:ing|ed)? (?:a|my)|call(?:ing)? (?:a|my)|speak(?:ing)? to (?:a|my)"
            r"|get(?:ting)? a)\s+(?:lawyer|attorney|solicitor)s?\b(?! for\b)",
            r"\blawyer(?:ing)? up\b",
            r"\b(?:i'?m|i am)\s+an?\s+(?:lawyer|attorney)\b",
            r"\bwhat (?:will|would)\s+(?:the\s+)?(?:faa|dot|ftc|fcc|cfpb|bbb|press|media|news|nyt|bbc|cnn)\b",
            r"\b(?:su(?:e|ing)|taking)\s+(?:you|your company|them|this company|@\w+)\b(?!\s+on\b)",
            r"\b(?:lawsuit|legal action|class action|small claims|take (?:you|this) to court"
            r"|see you in court)\b",
            r"\b(?:report(?:ing|ed)?|complain(?:ing|t)?|escalat\w+|writ(?:e|ing)|contact(?:ing)?|fil(?:e"
            r"|ing))\b[^.!?]{0,30}\b(?:to|with)\s+(?:the\s+)?"
            r"(?:fca|ftc|cfpb|ofcom|ofgem|ombudsman|bbb|better business bureau|trading standards|dot|faa|"
            r"attorney general|regulators?|fcc|cma|ico|consumer (?:protection|affairs|council))\b",
            r"\b(?:going to|will|gonna)\s+(?:go to|contact|call|tell)\s+(?:the\s+)?(?:press|media|news"
            r"|newspapers?|journalists?|reporters?|bbc|cnn)\b",
            r"\b(?:going|go|went|gone|take (?:this|it))\s+to\s+the\s+(?:press|media|news|papers)\b",
        ),
    ),
    Rule(
        # Stuck somewhere, a cancelled or about-to-be-missed departure, or cut off from an essential service,
        # with a deadline or a hardship: a plain "stranded for two days", however angry, is a complaint.
        "stranded_time_pressure",
        (
            "stranded$ stuck$ trapped$ sleeping$ cancel missed$ power$ electricity$ heat$ heating$ "
            "water$ gas$ locked$ boarding$ miss$ missing$ takes$ leaves$ departs$ boards$ closes$ "
            "gate$ leaving$ airport$ station$ flight$ flights$ connection$ plane$ planes$ freezing$ cold$ "
            "snow$ refus"
        ),
        _p(
            r"\b(?:stranded|stuck|trapped)\b(?!\s+(?:on|in)\s+(?:hold|a loop|the queue|line\b))",
            r"\bsleeping\s+(?:at|in)\s+(?:the\s+)?(?:airport|gate|terminal|station|[A-Z]{3}\b)",
            r"\b(?:cancell?ed|cancel)\s+(?:my|our|his|her|their)\s+(?:\w+\s+)?(?:flight|ticket|booking"
            r"|train)",
            r"\b(?:flight|train)\s+(?:was|got|has been|is)\s+cancell?ed\b",
            r"\bmissed\s+(?:my|our|the)\s+connect(?:ion|ing flight)",
            r"\b(?:no|without)\s+(?:power|electricity|heat|heating|water|gas)\b",
            r"\blocked out\b",
            r"\b(?:denied|refused)\s+boarding\b",
            r"\b(?:miss|missing|about to miss|going to miss|gonna miss)\s+(?:my|our|the|his|her|their)\s+"
            r"(?:\w+\s+)?(?:flight|train|connection|plane)",
            r"\b(?:flight|train|bus|gate)\b[^.!?]{0,40}\b(?:takes off|leaves|departs|boards|closes"
            r"|leaving)\b",
            r"\b(?:guide|take|help)\s+(?:me|us)\s+to\s+(?:my|our|the)\s+gate\b",
            r"\b(?:can'?t|cannot|unable to|how (?:do|can) (?:i|we))\s+(?:get|getting|make it)\s+(?:to|2)\s+"
            r"(?:the\s+)?(?:airport|station|gate)\b",
            r"\b(?:get|getting)\s+(?:\w+\s+)?(?:a\s+|any\s+)?flight\s+out\b",
            r"\bmake\s+(?:it to\s+)?(?:my|our|the)\s+(?:flight|connection|plane)s?\b",
            r"\b(?:waiting|wait|stuck|standing|sitting)\b[^.!?]{0,40}\b(?:below freezing|freezing"
            r"|in the (?:cold|snow))\b",
            r"\brefus\w*\s+to\s+(?:allow|let)\s+(?:\w+\s+){1,2}(?:to\s+)?board\b",
        ),
        also=_p(
            r"\b(?:today|tonight|right now|asap|immediately|urgent(?:ly)?|this (?:morning|afternoon"
            r"|evening)|till monday)\b",
            r"\bin\s+(?:the next\s+)?(?:\d+|an?|one|two|three)\s*(?:hours?|hrs?|h|minutes?|mins?)\b",
            r"\(?\d+\s*mins?\)?|\bat\s+\d{1,2}(?::\d\d)?\s*(?:am|pm)?\b|\b\d{1,2}(?::\d\d)?\s*(?:am|pm)\b",
            r"\b(?:deadline|baby|infant|elderly|disabled|blind|wheelchair|freezing|medical|insulin|oxygen"
            r"|dying|funeral|hospital|kids|children|child|students|vets|pregnant)\b",
            r"\b(?:sick|ill)\s+(?:\w+\s+)?(?:child|kid|son|daughter|wife|husband|mother|father|mom|dad"
            r"|relative|parent|grandparent)\b|\bvery (?:sick|ill)\b",
            r"\b(?:need(?:s)? to (?:be|get)|no (?:other )?(?:ride|way|hotel|room|place|accommodations?)"
            r"|desperate(?:ly)?|please help|help please|help pls|help!|hold (?:the|that) plane|no help"
            r"|not getting any help|anything you can do)\b",
        ),
        guards=_p(r"\b(?:stuck|been)\s+on hold\b", r"\blocked out of (?:the )?(?:game|chat)\b"),
    ),
    Rule(
        # A passenger who needs assistance to travel, with the departure close
        # ("legally blind, flight at 330pm (45mins), need assistance").
        "assistance_time_pressure",
        "blind$ wheelchair$ assistance$ disabled$ mobility$",
        _p(
            r"\b(?:legally blind|blind|wheelchair|special assistance|need(?:s|ed)? assistance"
            r"|reduced mobility)\b"
        ),
        also=_p(
            r"\b(?:today|tonight|right now|asap|immediately|urgent(?:ly)?"
            r"|this (?:morning|afternoon|evening))\b",
            r"\bin\s+(?:\d+|an?|one|two|three)\s*(?:hours?|hrs?|h|minutes?|mins?)\b",
            r"\(?\d+\s*mins?\)?|\bat\s+\d{1,2}(?::\d\d)?\s*(?:am|pm)\b|\b\d{3,4}\s*(?:am|pm)\b",
        ),
    ),
    Rule(
        # Stranded now with nowhere to go: overnight, no bed, no ride. Needs no deadline.
        "stranded",
        "stranded$ overnight$ sleep$ sleeping$ floor$ place$",
        _p(
            r"\b(?:literally|currently|now|still|completely)\s+stranded\b",
            r"\bstranded\b[^.!?]{0,40}\b(?:no|without)\s+(?:a\s+)?(?:ride|car|hotel|room|way home|money"
            r"|phone)\b",
            r"\bstuck overnight\b",
            r"\bsleep(?:ing)?\s+(?:at|in|on)\s+the\s+(?:airport|station|terminal|floor)\b",
            r"\b(?:a|no|any)\s+place to sleep\b|\bon the floor (?:at|in|of)\b",
        ),
    ),
    Rule(
        # A departure about to be missed: a plea to hold the plane, or a flight the customer expects to miss.
        "departure_at_risk",
        "plane$ flight$ connection$ train$",
        _p(
            r"\bhold\s+(?:that|the|this|my|our)\s+(?:plane|flight|connection)\b"
            r"|\bhold\s+flight\s*#?\d{1,4}\b",
            r"\b(?:might|may|about to|going to|gonna|will|could)\s+miss\s+(?:my|our|the|his|her|their)\s+"
            r"(?:\w+\s+)?(?:flight|plane|connection|train)\b",
        ),
        guards=_p(
            r"\b(?:hop(?:e|ing)|don'?t want to|do not want to|not)\s+(?:\w+\s+)?(?:we"
            r"|i)?\s*(?:don'?t\s+)?miss"
        ),
    ),
    Rule(
        "harassment_threat",
        (
            "threat harass stalk assault groped$ abused$ sexual racial doxx kill$ hurt$ find$ shoot$ "
            "stab$ hit$ attacked$ grabbed$ touch grop fondl"
        ),
        _p(
            r"\b(?:threaten(?:ed|ing)?|harass(?:ed|ing|ment)?|stalk(?:ed|ing)|assault(?:ed)?|groped"
            r"|abused)\s+(?:me|us|u|my|our|by|passengers|customers|women)\b",
            r"\b(?:touch(?:ed|ing)?|grop\w*|fondl\w*)\s+(?:me\b|my\s+(?:ass|butt|bum|breasts?|chest|legs?"
            r"|thighs?|crotch|body))",
            r"\b(?:sexual(?:ly)?\s+(?:harass\w*|assault\w*)|death threats?|racial(?:ly)?\s+abuse\w*"
            r"|doxx\w*)\b",
            r"\b(?:i(?:'ll| will| am going to|'m going to| gonna)|we(?:'ll| will))\s+(?:kill|hurt|find"
            r"|shoot|stab)\s+(?:you|him|her|them|your)\b",
            r"\b(?:your|the)\s+(?:driver|agent|staff|employee|rep|manager|courier)\s+(?:threatened"
            r"|assaulted|hit|attacked|harassed|grabbed)\b",
        ),
    ),
    Rule(
        # A crash or an injury on a ride or a trip, even told after the fact.
        "accident_injury",
        "accident colli crash rear hit$",
        _p(
            r"\b(?:car|road|traffic|bus|taxi|cab)\s+(?:accident|crash|collision)\b",
            r"\b(?:got|been|was|were|had)\s+(?:in|into)\s+(?:a|an)\s+(?:\w+\s+)?(?:accident|crash"
            r"|collision)\b",
            r"\b(?:driver|car|bus|cab|taxi|uber|lyft)\s+(?:crashed|collided|rear[- ]ended)\b",
            r"\bhit\s+(?:my|his|her)\s+(?:head|face|neck)\b",
        ),
    ),
    Rule(
        "data_exposure",
        "leak expos breach shared sold publish see$ someone somebody",
        _p(
            r"\b(?:my|our|customer|personal)\s+(?:data|details|information|info)\s+(?:was|were|has been"
            r"|have been|got|is being)\s+(?:leaked|exposed|breached|shared|sold|published)",
            r"\bdata (?:breach|leak)\b",
            r"\b(?:i can|can)\s+see\s+(?:other|someone else'?s|another)\s+(?:people'?s|person'?s"
            r"|customers?'?|user'?s)?\s*(?:orders?|accounts?|data|details|information|addresses)",
            r"\bsome(?:one|body) else'?s\s+(?:passport|personal|details|info|information|data|address"
            r"|phone number)",
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    matched: str

    def reason(self) -> str:
        return f"{self.rule}: {self.matched}"


# Cues: a word ending in "$" must equal a word of the message; a cue starting with "~" occurs anywhere in it
# (scripts written without spaces, such as Japanese); any other cue is a prefix of a word.
_WORD = re.compile(r"[\w&]+")
# For ASCII text the same words come from a translate and a split, without a regex scan.
_SEPARATORS = {ord(c): " " for c in map(chr, range(128)) if not (c.isalnum() or c in "_&")}
_EXACT: dict[str, set[int]] = {}
_PREFIX: dict[str, set[int]] = {}
_SUBSTRING: dict[str, set[int]] = {}
for _i, _rule in enumerate(RULES):
    for _cue in _rule.cues.split():
        if _cue.startswith("~"):
            _SUBSTRING.setdefault(_cue[1:], set()).add(_i)
        elif _cue.endswith("$"):
            _EXACT.setdefault(_cue[:-1], set()).add(_i)
        else:
            _PREFIX.setdefault(_cue, set()).add(_i)
_EXACT_WORDS = frozenset(_EXACT)


def _trie(words: list[str]) -> str:
    """A regular expression matching any of `words`, longest first, written as a character trie: at each
    character at most one branch can continue, so the scan never retries the same letters word by word."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


# One scan finds word-initial prefixes, longest first; a prefix found stands for the rules of every shorter
# prefix it starts with, which the scan cannot report at the same place.
_PREFIX_SCAN = re.compile(r"\b" + _trie(list(_PREFIX)))
_PREFIX_RULES = {c: set().union(*(r for p, r in _PREFIX.items() if c.startswith(p))) for c in _PREFIX}


def _candidates(text: str) -> set[int]:
    """Indices of the rules whose cues occur in `text`: the only rules that can fire on it."""
    lower = text.lower()
    found: set[int] = set()
    if lower.isascii():
        words = lower.translate(_SEPARATORS).split()
    else:
        words = _WORD.findall(lower)
        for cue, rules in _SUBSTRING.items():
            if cue in lower:
                found |= rules
    for word in _EXACT_WORDS.intersection(words):
        found |= _EXACT[word]
    for prefix in _PREFIX_SCAN.findall(lower):
        found |= _PREFIX_RULES[prefix]
    return found


def urgency(text: str) -> list[RuleHit]:
    """Every urgency rule that fires on `text`, in rule order."""
    return urgency_many([text])[0]


def urgency_many(texts: Sequence[str]) -> list[list[RuleHit]]:
    """`[urgency(t) for t in texts]`: one prefilter scan of the batch finds the (message, rule) pairs worth
    confirming."""
    out: list[list[RuleHit]] = [[] for _ in texts]
    if not texts:
        return out
    # Where each text ends in the batch joined by newlines, its newline included.
    ends = batch.ends(texts, 1)
    scanned, by_cues = _scan_buffer(texts, ends)
    for i in by_cues:
        out[i] = urgency_by_cues(texts[i])
    for i, rule in _prefilter().candidates(scanned, ends):
        if i not in by_cues:
            hit = _hit(RULES[rule], texts[i])
            if hit is not None:
                out[i].append(hit)
    return out


def urgency_by_cues(text: str) -> list[RuleHit]:
    """`urgency` through the cue pre-check alone: for the messages the prefilter cannot scan."""
    candidates = _candidates(text)
    if not candidates:
        return []
    return [hit for i in sorted(candidates) if (hit := _hit(RULES[i], text)) is not None]


# The prefilter scans ASCII only, matching case-blind (exact for ASCII letters). A message's other characters
# are symbols (emoji, curly quotes, dashes), letters, digits or spaces. A symbol is replaced by "\x01", which
# every pattern element able to match a symbol (".", "\W", "\S", "\D", a negated class) also matches, and
# which, like a symbol, is no word character for "\b". A message holding any other non-ASCII character, or one
# a trigger spells out, or an ASCII space that Hyperscan's "\s" does not know, takes the cue path.
_SYMBOL_STAND_IN = "\x01"
# ASCII characters that Python's "\s" matches and Hyperscan's does not.
_UNSEEN_SPACE = re.compile(r"[\x1c-\x1f]")
_WORD_CHAR = re.compile(r"\w")
_TRIGGER_CHARS = frozenset(
    ch for rule in RULES for pattern in rule.triggers for ch in pattern.pattern if not ch.isascii()
)


@functools.lru_cache(maxsize=4096)
def _stands_in(ch: str) -> bool:
    """True for a non-ASCII character the stand-in may replace."""
    return not (ch.isspace() or _WORD_CHAR.match(ch) or ch in _TRIGGER_CHARS)


def _scan_buffer(texts: Sequence[str], ends: np.ndarray) -> tuple[bytes, set[int]]:
    """What the prefilter scans (the texts joined by newlines, every non-ASCII character replaced by the
    stand-in, so that offsets stay those of the characters), and the indices of the texts that only the cue
    path reads exactly; `ends` is where each text ends in the joined batch."""
    joined = "\n".join(texts)
    by_cues: set[int] = set()
    if _UNSEEN_SPACE.search(joined):
        by_cues.update(i for i, text in enumerate(texts) if _UNSEEN_SPACE.search(text))
    if joined.isascii():
        return joined.encode("ascii"), by_cues
    codes = batch.code_points(joined)
    beyond = codes >= 128
    unscannable = [c for c in np.unique(codes[beyond]).tolist() if not _stands_in(chr(c))]
    if unscannable:
        at = np.flatnonzero(np.isin(codes, unscannable))
        by_cues.update(batch.owners(ends, at).tolist())
    return np.where(beyond, ord(_SYMBOL_STAND_IN), codes).astype(np.uint8).tobytes(), by_cues


class _Prefilter:
    """Every rule's triggers in one Hyperscan database, in prefilter mode: each reports at least wherever its
    Python pattern matches (lookarounds, which Hyperscan cannot run, are left out)."""

    def __init__(self) -> None:
        for rule in RULES:
            for pattern in rule.triggers:
                # Messages are scanned joined by newlines: no anchor to a text's start or end would hold.
                if re.search(r"\\[AZ]|(?<![\[\\])\^|(?<!\\)\$", pattern.pattern):
                    raise ValueError(f"rule {rule.name}: anchored pattern {pattern.pattern!r}")
        self.database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_CASELESS
        self.database.compile(
            expressions=[rule._trigger.pattern.encode() for rule in RULES],
            ids=list(range(len(RULES))),
            elements=len(RULES),
            flags=[flags] * len(RULES),
        )
        # One scratch space per database: scans from several threads take turns.
        self.lock = threading.Lock()

    def candidates(self, scanned: bytes, ends: np.ndarray) -> list[tuple[int, int]]:
        """Sorted, distinct (text index, rule index) pairs whose trigger may match, from one scan of
        `scanned`, which holds the texts that end at `ends` (each followed by a newline)."""
        matches: list[int] = []
        pairs: list[int] = []

        def on_match(rule: int, start: int, end: int, flags: int, context: object) -> None:
            matches.append(end)
            pairs.append(rule)

        with self.lock:
            self.database.scan(scanned, match_event_handler=on_match)
        if not matches:
            return []
        # Attributed by the match's last character; a match across the newline between two messages only
        # adds a candidate that the Python pattern then rejects.
        which = batch.owners(ends, np.asarray(matches) - 1)
        return sorted(set(zip(which.tolist(), pairs, strict=True)))


@functools.cache
def _prefilter() -> _Prefilter:
    return _Prefilter()


def compile_prefilter() -> None:
    """Compile the prefilter now (about half a second) rather than on the first batch."""
    _prefilter()


def _hit(rule: Rule, text: str) -> RuleHit | None:
    matched = rule.match(text)
    return None if matched is None else RuleHit(rule.name, matched.strip())


def urgency_full(text: str) -> list[RuleHit]:
    """The same as `urgency`, without the cue pre-check (the reference it is checked against)."""
    hits = []
    for rule in RULES:
        matched = rule.match(text)
        if matched is not None:
            hits.append(RuleHit(rule.name, matched.strip()))
    return hits


def raise_intent(model_intent: str, hits: list[RuleHit]) -> str:
    """The final intent: urgent when any rule fired, otherwise the model's intent (never lowered)."""
    return "urgent" if hits else model_intent
