"""Urgency rules: named, precise patterns that may raise a message's intent to `urgent`, never lower it.

Each rule is a set of trigger patterns, optionally a second set that must also match (a time-pressure cue for
"stranded"), and guards that veto a match (figures of speech such as "this app is killing me").
Every rule that fires is reported with the text that triggered it.

Each rule also lists `cues`: words (or word prefixes) one of which every trigger match contains. Looking the
message's words up in a table of cues tells which rules can fire at all, so the detailed patterns run only on
the few messages, and for the few rules, that need them. `urgency_full` skips nothing; training checks that
the two agree on every row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


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
        "hack compromis taken$ stol breach someone somebody unauthori suspicious$ unknown$ changed$ hijack",
        _p(
            r"\b(?:account|profile|email|instagram|facebook|page)\b[^.!?]{0,30}\b(?:was|has been|got|been"
            r"|is)\s+"
            r"(?:hacked|compromised|taken over|stolen|breached)",
            r"\bhacked\s+(?:my|into my|our)\b",
            r"\b(?:i(?:'ve| have)?|we(?:'ve| have)?)\s+(?:been|got|was)\s+hacked\b",
            r"\bsome(?:one|body)\s+(?:has\s+)?(?:logged|log|got|get|broke|hacked|signed)\s+(?:in(?:to)?"
            r"|on to)\s+"
            r"(?:my|our)\s+account",
            r"\bsome(?:one|body)\b[^.!?]{0,40}\bchanged\s+(?:my|the)\s+"
            r"(?:email|password|phone number|login|pin)",
            r"\bsome(?:one|body)\s+(?:has\s+)?(?:got|gotten|get|gets)\s+(?:in)?to\s+(?:my|our)\s+account",
            r"\b(?:unauthori[sz]ed|suspicious|unknown)\s+(?:log ?ins?|sign[- ]ins?|access|logins?)\b",
            r"\bchanged my (?:email|password)[^.!?]{0,30}(?:without|wasn'?t me|not me)",
            r"\b(?:account|profile|page)\b[^.!?]{0,30}\bhijack\w*|\bhijacked\b",
            r"\bsome(?:one|body)\s+(?:keeps?\s+)?(?:trying to\s+)?(?:buy|order|purchas|us"
            r"|spend)\w*\b[^.!?]{0,40}"
            r"\b(?:on|with|from) my account",
        ),
    ),
    Rule(
        "fraud_charges",
        (
            "unauthori fraud unrecogni unknown$ suspicious$ make made authori recogni place scam stol "
            "taken$ phish cyber theft$ charged$ billed$"
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
            # Charged for a subscription the customer never took out.
            r"\b(?:charged|billed)\b[^.!?]{0,40}\b(?:i|and)\s+(?:didn'?t|did not|never)\s+"
            r"(?:sign(?:ed)? up|subscribe[ds]?|authori[sz]e[ds]?)\b",
        ),
    ),
    Rule(
        "card_compromised",
        "stol compromis clon skim lost someone somebody freeze$ block$ cancel",
        _p(
            r"\b(?:card|wallet|purse|bank card|credit card|debit card)\b[^.!?]{0,20}\b(?:was|has been|got"
            r"|is|been)\s+"
            r"(?:stolen|compromised|cloned|skimmed|lost)",
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
            "seizure$ heart$ stroke$ breathing$ epipen$ nut$ cashew peanut tree$ sesame$ shellfish$"
        ),
        _p(
            r"\b(?:glass|metal|plastic|blade|needle|bug|insect|cockroach|roach|mouse|rat|worm|mou?ld)\b"
            r"[^.!?]{0,25}\b(?:in|inside)\s+(?:my|the|our|his|her)\s+(?:food|meal|sandwich|drink|burger"
            r"|salad|"
            r"order|bowl|burrito|pizza|coffee|soup|bag)",
            r"\b(?:food poisoning|allergic reaction|anaphyla\w+|salmonella|e\.? ?coli)\b",
            r"\b(?:injured|injury|bleeding|concussion|broke (?:my|his|her) (?:arm|leg|wrist|ankle))\b",
            r"\b(?:cut|burn(?:ed|t)?)\s+(?:my|his|her|their)\s+(?:mouth|hand|finger|lip|tongue|face|arm|leg)",
            r"\b(?:caught fire|on fire|exploded|explosion|smoke (?:coming|pouring)|sparking|electric shock|"
            r"gas leak|carbon monoxide)\b",
            r"\b(?:went|taken|rushed|ended up)\s+(?:to|in)\s+(?:the\s+)?(?:hospital|a&e|er|emergency room)\b",
            r"\b(?:unsafe|dangerous)\s+(?:driver|driving|car|ride|conditions?|product|aircraft|plane)\b",
            r"\b(?:choking|choked|can'?t breathe|medical emergency|need (?:my )?(?:insulin|medication))\b",
            r"\b(?:in (?:severe |so much |a lot of )?pain|passed out|fainted|unconscious|seizure"
            r"|heart attack|"
            r"stroke|not breathing)\b",
            r"\b(?:allergic|allergy|allergies|allergen|epipen|nut[- ]free)\b",
            # An allergen in food that should not hold it ("since when does the curry have cashews in it?").
            r"\b(?:cashews?|peanuts?|tree nuts?|sesame|shellfish)\b[^.!?]{0,40}\bin (?:it|this|my|the)\b",
        ),
        guards=_p(
            r"\b(?:lol|lmao|haha)\b[^.!?]{0,10}$", r"\bon fire\b[^.!?]{0,20}(?:today|tonight|lately|🔥)"
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
            r"|get(?:ting)? a)\s+"
            r"(?:lawyer|attorney|solicitor)s?\b(?! for\b)",
            r"\blawyer(?:ing)? up\b",
            r"\b(?:i'?m|i am)\s+an?\s+(?:lawyer|attorney)\b",
            r"\bwhat (?:will|would)\s+(?:the\s+)?(?:faa|dot|ftc|fcc|cfpb|bbb|press|media|news|nyt|bbc|cnn)\b",
            r"\b(?:su(?:e|ing)|taking)\s+(?:you|your company|them|this company|@\w+)\b",
            r"\b(?:lawsuit|legal action|class action|small claims|take (?:you|this) to court"
            r"|see you in court)\b",
            r"\b(?:report(?:ing|ed)?|complain(?:ing|t)?|escalat\w+|writ(?:e|ing)|contact(?:ing)?|fil(?:e|ing))\b"
            r"[^.!?]{0,30}\b(?:to|with)\s+(?:the\s+)?"
            r"(?:fca|ftc|cfpb|ofcom|ofgem|ombudsman|bbb|better business bureau|trading standards|dot|faa|"
            r"attorney general|regulators?|fcc|cma|ico|consumer (?:protection|affairs|council))\b",
            r"\b(?:going to|will|gonna)\s+(?:go to|contact|call|tell)\s+(?:the\s+)?(?:press|media|news"
            r"|newspapers?|"
            r"journalists?|reporters?|bbc|cnn)\b",
            r"\b(?:going|go|went|gone|take (?:this|it))\s+to\s+the\s+(?:press|media|news|papers)\b",
        ),
    ),
    Rule(
        "stranded_time_pressure",
        (
            "stranded$ stuck$ trapped$ sleeping$ cancel missed$ power$ electricity$ heat$ heating$ "
            "water$ gas$ locked$ boarding$ miss$ missing$ takes$ leaves$ departs$ boards$ closes$ "
            "gate$"
        ),
        _p(
            r"\b(?:stranded|stuck|trapped|sleeping)\s+(?:at|in)\s+(?:the\s+)?(?:airport|gate|terminal"
            r"|station|[A-Z]{3}\b)",
            r"\b(?:cancell?ed|cancel)\s+(?:my|our)\s+(?:flight|ticket|booking|train)",
            r"\b(?:flight|train)\s+(?:was|got|has been|is)\s+cancell?ed\b",
            r"\bmissed\s+(?:my|our|the)\s+connect(?:ion|ing flight)",
            r"\b(?:no|without)\s+(?:power|electricity|heat|heating|water|gas)\b",
            r"\blocked out\b",
            r"\b(?:denied|refused)\s+boarding\b",
            r"\b(?:miss|missing|about to miss|going to miss|gonna miss)\s+(?:my|our|the)\s+(?:flight|train"
            r"|connection)",
            r"\b(?:flight|train|bus|gate)\b[^.!?]{0,40}\b(?:takes off|leaves|departs|boards|closes)\b",
            r"\b(?:guide|take|help)\s+(?:me|us)\s+to\s+(?:my|our|the)\s+gate\b",
        ),
        also=_p(
            r"\b(?:today|tonight|right now|asap|immediately|urgent(?:ly)?|this (?:morning|afternoon"
            r"|evening))\b",
            r"\bin\s+(?:\d+|an?|one|two|three)\s*(?:hours?|hrs?|h|minutes?|mins?)\b",
            r"\(?\d+\s*mins?\)?|\bat\s+\d{1,2}(?::\d\d)?\s*(?:am|pm)?\b",
            r"\b(?:deadline|baby|infant|elderly|disabled|blind|wheelchair|freezing|medical|insulin|oxygen)\b",
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
        "stranded",
        "stranded$ overnight$ sleep$ sleeping$",
        _p(r"\bstranded\b", r"\bstuck overnight\b", r"\bsleep(?:ing)? (?:at|in) the (?:airport|station)\b"),
    ),
    Rule(
        "harassment_threat",
        (
            "threat harass stalk assault groped$ abused$ sexual racial doxx kill$ hurt$ find$ shoot$ "
            "stab$ hit$ attacked$ grabbed$"
        ),
        _p(
            r"\b(?:threaten(?:ed|ing)?|harass(?:ed|ing|ment)?|stalk(?:ed|ing)|assault(?:ed)?|groped"
            r"|abused)\s+"
            r"(?:me|us|my|our|by)\b",
            r"\b(?:sexual(?:ly)?\s+(?:harass\w*|assault\w*)|death threats?|racial(?:ly)?\s+abuse\w*"
            r"|doxx\w*)\b",
            r"\b(?:i(?:'ll| will| am going to|'m going to| gonna)|we(?:'ll| will))\s+(?:kill|hurt|find"
            r"|shoot|stab)\s+"
            r"(?:you|him|her|them|your)\b",
            r"\b(?:your|the)\s+(?:driver|agent|staff|employee|rep|manager|courier)\s+(?:threatened"
            r"|assaulted|hit|"
            r"attacked|harassed|grabbed)\b",
        ),
    ),
    Rule(
        # A crash or an injury on a ride or a trip, even told after the fact.
        "accident_injury",
        "accident colli crash rear hit$",
        _p(
            r"\b(?:car|road|traffic|bus|taxi|cab)\s+(?:accident|crash|collision)\b",
            r"\b(?:got|been|was|were|had)\s+(?:in|into)\s+(?:a|an)\s+(?:\w+\s+)?(?:accident|crash|collision)\b",
            r"\b(?:driver|car|bus|cab|taxi|uber|lyft)\s+(?:crashed|collided|rear[- ]ended)\b",
            r"\bhit\s+(?:my|his|her)\s+(?:head|face|neck)\b",
        ),
    ),
    Rule(
        "data_exposure",
        "leak expos breach shared sold publish see$ someone somebody",
        _p(
            r"\b(?:my|our|customer|personal)\s+(?:data|details|information|info)\s+(?:was|were|has been"
            r"|have been|"
            r"got|is being)\s+(?:leaked|exposed|breached|shared|sold|published)",
            r"\bdata (?:breach|leak)\b",
            r"\b(?:i can|can)\s+see\s+(?:other|someone else'?s|another)\s+(?:people'?s|person'?s"
            r"|customers?'?|user'?s)?"
            r"\s*(?:orders?|accounts?|data|details|information|addresses)",
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


# Cues: a word ending in "$" must equal a word of the message; any other cue is a prefix of one.
_WORD = re.compile(r"[\w&]+")
# For ASCII text the same words come from a translate and a split, without a regex scan.
_SEPARATORS = {ord(c): " " for c in map(chr, range(128)) if not (c.isalnum() or c in "_&")}
_EXACT: dict[str, set[int]] = {}
_PREFIX: dict[str, set[int]] = {}
for _i, _rule in enumerate(RULES):
    for _cue in _rule.cues.split():
        if _cue.endswith("$"):
            _EXACT.setdefault(_cue[:-1], set()).add(_i)
        else:
            _PREFIX.setdefault(_cue, set()).add(_i)
_EXACT_WORDS = frozenset(_EXACT)


def _trie(words: list[str]) -> str:
    """A regular expression matching any of `words`, longest first, written as a character trie: at each
    character at most one branch can continue, so the scan never retries the same letters word by word."""
    root: dict = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
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
    words = lower.translate(_SEPARATORS).split() if lower.isascii() else _WORD.findall(lower)
    for word in _EXACT_WORDS.intersection(words):
        found |= _EXACT[word]
    for prefix in _PREFIX_SCAN.findall(lower):
        found |= _PREFIX_RULES[prefix]
    return found


def urgency(text: str) -> list[RuleHit]:
    """Every urgency rule that fires on `text`, in rule order."""
    candidates = _candidates(text)
    if not candidates:
        return []
    return [hit for i in sorted(candidates) if (hit := _hit(RULES[i], text)) is not None]


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
