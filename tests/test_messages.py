"""Channel and intent names have one definition (parley.messages, read from the protos' enums)."""

from typing import get_args

from parley.messages import CHANNEL_NAMES, CHANNELS_BY_NAME, INTENT_NAMES, INTENTS_BY_NAME
from parley.router.policy import IntentName
from parley.v1 import common_pb2


def test_every_enum_value_but_unspecified_has_its_lower_case_name() -> None:
    assert CHANNEL_NAMES == {
        common_pb2.CHANNEL_X: "x",
        common_pb2.CHANNEL_FACEBOOK: "facebook",
        common_pb2.CHANNEL_MESSENGER: "messenger",
        common_pb2.CHANNEL_INSTAGRAM: "instagram",
        common_pb2.CHANNEL_WHATSAPP: "whatsapp",
    }
    assert list(INTENT_NAMES.items()) == [
        (common_pb2.INTENT_PRAISE, "praise"),
        (common_pb2.INTENT_QUESTION, "question"),
        (common_pb2.INTENT_COMPLAINT, "complaint"),
        (common_pb2.INTENT_URGENT, "urgent"),
        (common_pb2.INTENT_OTHER, "other"),
    ]
    assert all(CHANNELS_BY_NAME[name] == number for number, name in CHANNEL_NAMES.items())
    assert all(INTENTS_BY_NAME[name] == number for number, name in INTENT_NAMES.items())


def test_the_routing_policys_intent_type_names_the_same_intents() -> None:
    # A Literal must be spelled out for the policy's validation; it may not drift from the protos.
    assert get_args(IntentName) == tuple(INTENT_NAMES.values())
