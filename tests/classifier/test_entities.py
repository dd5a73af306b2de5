import pytest

from parley.classifier.entities import extract, iban_valid, luhn_valid


def spans(text: str) -> list[tuple[str, str]]:
    out = []
    for e in extract(text):
        assert text[e.start : e.end] == e.text
        out.append((e.type, e.text))
    return out


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_card_with_spaces_or_dashes_is_luhn_checked() -> None:
    assert spans("card 4111 1111 1111 1111 please") == [("payment_card", "4111 1111 1111 1111")]
    assert spans("card 5555-5555-5555-4444") == [("payment_card", "5555-5555-5555-4444")]
    # Same shape, wrong checksum: not a card (and too long for a phone number).
    assert spans("card 4111 1111 1111 1112 please") == []


def test_card_span_offsets() -> None:
    text = "my card 4111111111111111 was charged"
    [card] = extract(text)
    assert (card.type, card.start, card.end) == ("payment_card", 8, 24)


def test_email_url_handle_do_not_overlap() -> None:
    text = "@acme_help mail jo.doe+x@mail.co.uk or see https://acme.com/help?q=1."
    assert spans(text) == [
        ("handle", "@acme_help"),
        ("email", "jo.doe+x@mail.co.uk"),
        ("url", "https://acme.com/help?q=1"),
    ]


def test_phone_numbers() -> None:
    assert spans("call me on +1 (415) 555-2671 or 020 7946 0958") == [
        ("phone", "+1 (415) 555-2671"),
        ("phone", "020 7946 0958"),
    ]


def test_order_and_account_numbers() -> None:
    assert spans("order #12345 arrived broken") == [("order_number", "12345")]
    assert spans("order number AB-99812 is late") == [("order_number", "AB-99812")]
    assert spans("my account number is 12345678") == [("account_number", "12345678")]


def test_flight_numbers() -> None:
    assert spans("flight UA 123 and AA1234 both late") == [
        ("flight_number", "UA 123"),
        ("flight_number", "AA1234"),
    ]
    assert spans("on flight 447 tonight") == [("flight_number", "447")]
    # Lower-case "ba 12" and durations are not flights.
    assert spans("waited 2 hours, ba 12 minutes") == []


def test_address() -> None:
    assert spans("ship it to 221 Baker Street, London NW1 6XE please") == [
        ("address", "221 Baker Street, London NW1 6XE")
    ]


def test_plain_numbers_are_not_entities() -> None:
    assert spans("I waited 2 hours 30 min, 10 000 people in line in 2024") == []


def test_anonymised_numeric_handles_are_handles_only() -> None:
    assert spans("@115873 @Uber_Support my driver never came") == [
        ("handle", "@115873"),
        ("handle", "@Uber_Support"),
    ]
    # A number outside a handle still counts.
    assert spans("@115873 order #55512 is late") == [("handle", "@115873"), ("order_number", "55512")]


def test_flight_designators_need_a_known_code_in_capitals() -> None:
    assert spans("DL4047 to CLE and BA 117 back") == [
        ("flight_number", "DL4047"),
        ("flight_number", "BA 117"),
    ]
    assert spans("ZZ 123 and dl 404 are not flights") == []


def test_street_first_addresses() -> None:
    assert spans("please send it to Hauptstraße 5, 10115 Berlin") == [
        ("address", "Hauptstraße 5, 10115 Berlin")
    ]
    assert spans("we moved to Berliner Allee 12a, 40212 Düsseldorf") == [
        ("address", "Berliner Allee 12a, 40212 Düsseldorf")
    ]
    assert spans("Keizersgracht 123, 1015 CJ Amsterdam") == [
        ("address", "Keizersgracht 123, 1015 CJ Amsterdam")
    ]
    assert spans("Hauptstr. 5") == [("address", "Hauptstr. 5")]


def test_number_first_addresses() -> None:
    assert spans("deliver to 350 5th Ave, New York, NY 10118 tomorrow") == [
        ("address", "350 5th Ave, New York, NY 10118")
    ]
    assert spans("10 Downing Street, London SW1A 2AA") == [("address", "10 Downing Street, London SW1A 2AA")]
    assert spans("12 Oak Court, Springfield, IL 62704") == [
        ("address", "12 Oak Court, Springfield, IL 62704")
    ]
    # A town on the next line, as people paste addresses.
    assert spans("13341 Woodland Park Drive\nHerndon, Virginia, 20171") == [
        ("address", "13341 Woodland Park Drive\nHerndon, Virginia, 20171")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "I bought 3 New Balance Court shoes",
        "the Spring 5 collection is out",
        "I waited 5 Long Days at the gate",
        "give it 2 Big Way points",
        "Turn to page 42 Main menu",
        "Ring 5 times before you hang up",
        "flight 5 Way too long",
    ],
)
def test_no_address_in_ordinary_sentences(text: str) -> None:
    assert [t for t, _ in spans(text) if t == "address"] == []


def test_iban_checksum() -> None:
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")  # checksum fails
    assert not iban_valid("DE89 3704 0044 0532 0130")  # too short for Germany
    assert not iban_valid("XX89 3704 0044 0532 0130 00")  # unknown country


def test_iban_entities() -> None:
    assert spans("my IBAN is DE89 3704 0044 0532 0130 00, please refund") == [
        ("iban", "DE89 3704 0044 0532 0130 00")
    ]
    assert spans("GB82WEST12345698765432") == [("iban", "GB82WEST12345698765432")]
    # One digit off: no IBAN, and its digit groups are not claimed as a card either.
    assert [t for t, _ in spans("IBAN DE89 3704 0044 0532 0130 01")] == []
