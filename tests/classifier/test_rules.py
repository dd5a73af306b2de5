import pytest

from parley.classifier.rules import RULES, raise_intent, urgency, urgency_full

CLEAR = {
    "account_takeover": "someone logged into my account and changed my email",
    "fraud_charges": "there are charges on my card I did not make",
    "card_compromised": "my card was stolen this morning",
    "safety_health": "there was glass in my sandwich, my kid cut his mouth",
    "legal_threat": "fix this or I'm contacting my lawyer",
    "stranded_time_pressure": "stuck at JFK, flight in 2 hours and you cancelled my ticket",
    "stranded": "literally stranded in Leeds because your driver never came",
    "harassment_threat": "your driver threatened me when I asked for a receipt",
    "data_exposure": "I can see other customers' orders in my account",
    "assistance_time_pressure": "I'm legally blind, my flight is at 330pm (45mins) and I need assistance",
    "accident_injury": "my driver crashed into a pole and I hit my head",
    "departure_at_risk": "security line is huge, we might miss our flight, please hold the plane",
    "unrecognised_purchase": "got a receipt for a purchase on my card but I've never ordered from you",
}

NEAR_MISS = {
    "account_takeover": "how do I change the email on my account?",
    "fraud_charges": "I was charged twice for one order",
    "card_compromised": "my card was declined at the checkout",
    "safety_health": "this app is killing me, it's so slow",
    "legal_threat": "Sue at your Leeds store was lovely",
    "stranded_time_pressure": "stuck on hold for 2 hours today",
    "stranded": "the train was late but I made my connection, thanks",
    "harassment_threat": "I'm going to kill it at the interview tomorrow",
    "data_exposure": "can I see my old orders in the app?",
    "assistance_time_pressure": "why did you disable my ability to reply? is wheelchair access online?",
    "accident_injury": "the app crashed again and I hit refresh ten times",
    "departure_at_risk": "I hope we don't miss our connection, last time was close",
    "unrecognised_purchase": "I never ordered the large size, please change it",
}


def test_every_rule_has_cases() -> None:
    assert {r.name for r in RULES} == set(CLEAR) == set(NEAR_MISS)


@pytest.mark.parametrize("name", sorted(CLEAR))
def test_rule_fires_on_clear_case(name: str) -> None:
    assert name in [h.rule for h in urgency(CLEAR[name])]


@pytest.mark.parametrize("name", sorted(NEAR_MISS))
def test_no_rule_fires_on_near_miss(name: str) -> None:
    assert urgency(NEAR_MISS[name]) == []


def test_every_firing_rule_is_reported() -> None:
    hits = urgency("my account was hacked and there are transactions I didn't make, I'm calling my lawyer")
    assert [h.rule for h in hits] == ["account_takeover", "fraud_charges", "legal_threat"]
    assert hits[0].reason().startswith("account_takeover: ")


def test_stranded_needs_time_pressure() -> None:
    assert urgency("my flight was cancelled last month, still no refund") == []
    assert urgency("our train leaves tomorrow, is there wifi on board?") == []
    assert [h.rule for h in urgency("my flight leaves at 5pm and the security line is an hour long")] == [
        "stranded_time_pressure"
    ]
    assert [h.rule for h in urgency("my flight was cancelled and I need to be in Boston tonight")] == [
        "stranded_time_pressure"
    ]


@pytest.mark.parametrize("intent", ["praise", "question", "complaint", "urgent", "other"])
def test_rules_raise_and_never_lower(intent: str) -> None:
    assert raise_intent(intent, urgency(CLEAR["fraud_charges"])) == "urgent"
    assert raise_intent(intent, []) == intent


MORE = [
    "someone got to my account and changed the email",
    "since when does the tikka masala have cashew nuts in it? 😡",
    "I'll be filing a complaint with the BBB",
    "My wife account got charged w 2 uber eats orders we never placed.",
    "UNAUTHORISED LOGIN on my account!!",
    "my card got cloned, theres payments from spain",
    "went to the A&E after eating there",
    "the e.coli outbreak, was it your store?",
    "she's stranded in DC, flight cancelled, needs to be home tonight",
    "ok thanks, DM sent",
    "where's my parcel? tracking says delivered",
    "",
]


def test_new_triggers_from_training_messages() -> None:
    assert [h.rule for h in urgency(MORE[0])] == ["account_takeover"]
    assert [h.rule for h in urgency(MORE[1])] == ["safety_health"]
    assert [h.rule for h in urgency(MORE[2])] == ["legal_threat"]


@pytest.mark.parametrize("text", [*CLEAR.values(), *NEAR_MISS.values(), *MORE])
def test_cue_precheck_never_skips_a_rule_that_fires(text: str) -> None:
    assert urgency(text) == urgency_full(text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("I was charged for a subscription and didn't sign up for it", "fraud_charges"),
        ("worst service ever. Too bad for you I'm a lawyer", "legal_threat"),
        ("a pilot on his phone during the checks, what will the FAA say?", "legal_threat"),
        ("someone else's passport info was on my booking", "data_exposure"),
        ("I got into a car accident while riding with your driver", "accident_injury"),
    ],
)
def test_more_urgent_wordings(text: str, rule: str) -> None:
    assert rule in [h.rule for h in urgency(text)]
    assert urgency(text) == urgency_full(text)


@pytest.mark.parametrize(
    "text",
    [
        "I was charged twice for the subscription I signed up for",
        "why can't I transfer money into someone else's account?",
        "what will the weather be like for my flight?",
    ],
)
def test_more_near_misses(text: str) -> None:
    assert urgency(text) == []


def test_prefix_trie_matches_longest_first() -> None:
    import re

    from parley.classifier.rules import _trie

    words = ["stol", "stolen", "hack", "ha", "scam"]
    trie = re.compile(r"\b" + _trie(words))
    plain = re.compile(r"\b(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")")
    for text in ["stolen card", "he stole it", "hacked! haha", "scammer stoled", "nothing here", "ha"]:
        assert trie.findall(text) == plain.findall(text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("friends are stuck at PHL and not getting any help from anyone", "stranded_time_pressure"),
        (
            "my wife is stuck in Brownsville, she needs to be at work tomorrow morning",
            "stranded_time_pressure",
        ),
        ("Can't get 2 airport 4 flight, icy back roads! Help pls?", "stranded_time_pressure"),
        ("40 mins waiting in below freezing weather for a cab", "stranded_time_pressure"),
        ("I just need a place to sleep when I land", "stranded"),
        ("my connecting flight leaves in 23 minutes. HOLD THAT PLANE", "departure_at_risk"),
        ("pilot checking the plane while on his cell. Safety???", "safety_health"),
        ("Wow, you just allowed someone to steal my phone number", "account_takeover"),
        ("My account gotten took can yall get it back", "account_takeover"),
        ("me pueden ayudar, me robaron mi cuenta", "account_takeover"),
        ("Mein Konto wurde gehackt", "account_takeover"),
        ("quelqu'un a payé des jeux avec ma carte", "fraud_charges"),
        ("compras que no reconozco en mi tarjeta", "fraud_charges"),
        ("注文した覚えのないものが届きました", "fraud_charges"),
        ("the driver touched my leg during the ride", "harassment_threat"),
        ("email confirmation of a wifi purchase, but I've never flown with you", "unrecognised_purchase"),
    ],
)
def test_wordings_across_situations_and_languages(text: str, rule: str) -> None:
    assert rule in [h.rule for h in urgency(text)]
    assert urgency(text) == urgency_full(text)


@pytest.mark.parametrize(
    "text",
    [
        "stranded in MDW for 2 days and still no refund",
        "stuck on hold for 2 hours",
        "Thanks for getting us to paradise safely!",
        "to add insult to injury, I have to pick the bag up myself",
        "love it, taking @rival on in their backyard!",
        "I'm sick of this, my flight was cancelled last week",
        "mi cuenta no tiene saldo, cómo recargo?",
        "注文した商品はいつ届きますか？",
    ],
)
def test_situations_without_stakes_stay_unraised(text: str) -> None:
    assert urgency(text) == []
    assert urgency_full(text) == []


# The batch path: a Hyperscan prefilter picks the (message, rule) pairs to confirm; messages it cannot scan
# exactly take the cue path. Both must give what running every rule gives.
PREFILTER_EDGES = [
    "my account was hacked 😡😡 please help",  # symbols replaced by the stand-in
    "my account was hacked\u00a0today",  # a non-ASCII space: the cue path
    "my card was stolen\x1cyesterday",  # an ASCII space Hyperscan's \s does not know: the cue path
    "my aͨccount was hacked",  # a combining mark (no word character) beside a letter
    "my \u212aey card was stolen",  # KELVIN SIGN, which matches "k" ignoring case
    "there are charges I didn’t make on my card",  # curly apostrophe
    "someone ſtole my card",  # LONG S, which matches "s" ignoring case
    "me robaron la cuenta 😭",
    "注文した覚えのない請求があります",
    "hacked",
    "😀hacked😀",
    "",
]


def random_rule_texts(seed: int, count: int) -> list[str]:
    """Texts built from pieces of rule wordings, separators and characters from other scripts."""
    import random

    pieces = [
        *CLEAR.values(),
        *NEAR_MISS.values(),
        *PREFILTER_EDGES,
        "my ",
        "account ",
        "was ",
        "hacked",
        "stolen ",
        "card",
        "\n",
        ". ",
        "😀",
        "é",
        "\u00a0",
        "\x1e",
        "K",
        "lawyer",
        "stuck at JFK ",
        "tonight",
        "never ordered",
        "receipt",
    ]
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(count)]


@pytest.mark.parametrize(
    "texts",
    [PREFILTER_EDGES, list(CLEAR.values()) + list(NEAR_MISS.values()), random_rule_texts(1, 500), [], [""]],
)
def test_batch_prefilter_gives_what_every_rule_gives(texts: list[str]) -> None:
    from parley.classifier.rules import urgency_by_cues, urgency_many

    expected = [urgency_full(t) for t in texts]
    assert urgency_many(texts) == expected
    assert [urgency_by_cues(t) for t in texts] == expected


def test_prefilter_catches_rules_whatever_surrounds_them() -> None:
    """A rule's wording must be found in every position of a batch, next to symbols, after newlines."""
    from parley.classifier.rules import urgency_many

    filler = ["thanks!", "😀 ok", "where is my order?\n", ""]
    texts = filler + [CLEAR["account_takeover"] + " 😡", "\n" + CLEAR["fraud_charges"]] + filler
    found = urgency_many(texts)
    assert [h.rule for h in found[4]] == ["account_takeover"]
    assert [h.rule for h in found[5]] == ["fraud_charges"]
    assert all(not found[i] for i in (0, 1, 2, 3, 6, 7, 8, 9))


def test_no_symbol_matches_an_ascii_word_character_ignoring_case() -> None:
    """Why a symbol may be replaced by the stand-in: outside ASCII, only letters and digits (word characters)
    can match an ASCII letter or digit of a pattern, even ignoring case."""
    import re
    import sys

    ascii_word = re.compile(r"[a-z0-9]", re.IGNORECASE)
    word = re.compile(r"\w")
    offenders = [
        hex(c) for c in range(0x80, sys.maxunicode + 1) if ascii_word.match(chr(c)) and not word.match(chr(c))
    ]
    assert offenders == []
