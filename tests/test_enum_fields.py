"""Unknown enum numbers are found at any depth of a request, in single and repeated fields."""

from __future__ import annotations

from parley.enum_fields import unknown_enum_values
from parley.v1 import common_pb2, conversations_pb2, router_pb2


def test_unknown_enum_numbers_are_named_by_their_path_at_any_depth() -> None:
    item = router_pb2.RouteItem(conversation_id="cv-1")
    item.message.channel = 99  # type: ignore[assignment]
    item.message.sent_at.FromSeconds(1_700_000_000)  # a message without enums on the way
    item.triage.intent = common_pb2.INTENT_QUESTION
    item.triage.scores.add(intent=common_pb2.INTENT_PRAISE)
    item.triage.scores.add(intent=77)  # type: ignore[arg-type]
    request = router_pb2.RouteRequest(items=[router_pb2.RouteItem(), item])

    found = unknown_enum_values(request)

    assert [path for path, _ in found] == ["items[1].message.channel", "items[1].triage.scores[1].intent"]
    assert "99 is not a defined Channel value" in found[0][1]


def test_a_request_of_defined_values_has_none() -> None:
    outcome = conversations_pb2.Outcome(conversation_id="cv-1", message_id="x:1")
    outcome.triage.intent = common_pb2.INTENT_URGENT
    outcome.routing.action = common_pb2.ROUTE_ACTION_QUEUED
    assert unknown_enum_values(conversations_pb2.RecordOutcomesRequest(outcomes=[outcome])) == []


def test_every_culprit_of_a_list_is_named_whether_the_list_holds_enums_or_messages() -> None:
    # A list of enums (a bot answer's channels) and a list of messages holding one (intent scores), each
    # with defined values around the undefined ones: every bad position is named, and none of the good.
    item = router_pb2.RouteItem(conversation_id="cv-1")
    item.triage.bot_answer.allowed_channels.extend(
        [common_pb2.CHANNEL_X, 41, common_pb2.CHANNEL_WHATSAPP, 42]
    )  # type: ignore[list-item]
    for intent in (common_pb2.INTENT_PRAISE, 55, common_pb2.INTENT_QUESTION, 56):
        item.triage.scores.add(intent=intent)  # type: ignore[arg-type]

    found = [path for path, _ in unknown_enum_values(router_pb2.RouteRequest(items=[item]))]

    assert found == [
        "items[0].triage.scores[1].intent",
        "items[0].triage.scores[3].intent",
        "items[0].triage.bot_answer.allowed_channels[1]",
        "items[0].triage.bot_answer.allowed_channels[3]",
    ]
