import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_X: _ClassVar[Channel]
    CHANNEL_FACEBOOK: _ClassVar[Channel]
    CHANNEL_MESSENGER: _ClassVar[Channel]
    CHANNEL_INSTAGRAM: _ClassVar[Channel]
    CHANNEL_WHATSAPP: _ClassVar[Channel]

class Visibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VISIBILITY_UNSPECIFIED: _ClassVar[Visibility]
    VISIBILITY_PUBLIC: _ClassVar[Visibility]
    VISIBILITY_PRIVATE: _ClassVar[Visibility]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_INBOUND: _ClassVar[Direction]
    DIRECTION_OUTBOUND: _ClassVar[Direction]

class Intent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTENT_UNSPECIFIED: _ClassVar[Intent]
    INTENT_PRAISE: _ClassVar[Intent]
    INTENT_QUESTION: _ClassVar[Intent]
    INTENT_COMPLAINT: _ClassVar[Intent]
    INTENT_URGENT: _ClassVar[Intent]
    INTENT_OTHER: _ClassVar[Intent]

class RouteAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_ACTION_UNSPECIFIED: _ClassVar[RouteAction]
    ROUTE_ACTION_BOT_REPLY: _ClassVar[RouteAction]
    ROUTE_ACTION_QUEUED: _ClassVar[RouteAction]
    ROUTE_ACTION_ASSIGNED: _ClassVar[RouteAction]
    ROUTE_ACTION_NO_ACTION: _ClassVar[RouteAction]
    ROUTE_ACTION_APPENDED: _ClassVar[RouteAction]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_X: Channel
CHANNEL_FACEBOOK: Channel
CHANNEL_MESSENGER: Channel
CHANNEL_INSTAGRAM: Channel
CHANNEL_WHATSAPP: Channel
VISIBILITY_UNSPECIFIED: Visibility
VISIBILITY_PUBLIC: Visibility
VISIBILITY_PRIVATE: Visibility
DIRECTION_UNSPECIFIED: Direction
DIRECTION_INBOUND: Direction
DIRECTION_OUTBOUND: Direction
INTENT_UNSPECIFIED: Intent
INTENT_PRAISE: Intent
INTENT_QUESTION: Intent
INTENT_COMPLAINT: Intent
INTENT_URGENT: Intent
INTENT_OTHER: Intent
ROUTE_ACTION_UNSPECIFIED: RouteAction
ROUTE_ACTION_BOT_REPLY: RouteAction
ROUTE_ACTION_QUEUED: RouteAction
ROUTE_ACTION_ASSIGNED: RouteAction
ROUTE_ACTION_NO_ACTION: RouteAction
ROUTE_ACTION_APPENDED: RouteAction

class Author(_message.Message):
    __slots__ = ("id", "handle", "display_name", "follower_count", "verified")
    ID_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    id: str
    handle: str
    display_name: str
    follower_count: int
    verified: bool
    def __init__(self, id: _Optional[str] = ..., handle: _Optional[str] = ..., display_name: _Optional[str] = ..., follower_count: _Optional[int] = ..., verified: _Optional[bool] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("type", "url", "mime_type", "platform_id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_ID_FIELD_NUMBER: _ClassVar[int]
    type: str
    url: str
    mime_type: str
    platform_id: str
    def __init__(self, type: _Optional[str] = ..., url: _Optional[str] = ..., mime_type: _Optional[str] = ..., platform_id: _Optional[str] = ...) -> None: ...

class InboundMessage(_message.Message):
    __slots__ = ("channel", "visibility", "platform_message_id", "in_reply_to_id", "brand_account_id", "author", "text", "sent_at", "attachments", "direction", "platform_thread_id", "message_id", "received_at")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    BRAND_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    visibility: Visibility
    platform_message_id: str
    in_reply_to_id: str
    brand_account_id: str
    author: Author
    text: str
    sent_at: _timestamp_pb2.Timestamp
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    direction: Direction
    platform_thread_id: str
    message_id: str
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., visibility: _Optional[_Union[Visibility, str]] = ..., platform_message_id: _Optional[str] = ..., in_reply_to_id: _Optional[str] = ..., brand_account_id: _Optional[str] = ..., author: _Optional[_Union[Author, _Mapping]] = ..., text: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., direction: _Optional[_Union[Direction, str]] = ..., platform_thread_id: _Optional[str] = ..., message_id: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IntentScore(_message.Message):
    __slots__ = ("intent", "probability")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    intent: Intent
    probability: float
    def __init__(self, intent: _Optional[_Union[Intent, str]] = ..., probability: _Optional[float] = ...) -> None: ...

class Entity(_message.Message):
    __slots__ = ("type", "text", "start", "end")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    type: str
    text: str
    start: int
    end: int
    def __init__(self, type: _Optional[str] = ..., text: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("name", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    weight: float
    def __init__(self, name: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("model_version", "top_features", "rules_fired")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOP_FEATURES_FIELD_NUMBER: _ClassVar[int]
    RULES_FIRED_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    top_features: _containers.RepeatedCompositeFieldContainer[Evidence]
    rules_fired: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_version: _Optional[str] = ..., top_features: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., rules_fired: _Optional[_Iterable[str]] = ...) -> None: ...

class BotAnswer(_message.Message):
    __slots__ = ("answer_id", "text", "confidence", "abstained", "allowed_channels", "topic")
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ABSTAINED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    text: str
    confidence: float
    abstained: bool
    allowed_channels: _containers.RepeatedScalarFieldContainer[Channel]
    topic: str
    def __init__(self, answer_id: _Optional[str] = ..., text: _Optional[str] = ..., confidence: _Optional[float] = ..., abstained: _Optional[bool] = ..., allowed_channels: _Optional[_Iterable[_Union[Channel, str]]] = ..., topic: _Optional[str] = ...) -> None: ...

class Triage(_message.Message):
    __slots__ = ("message_id", "intent", "scores", "topic", "topic_confidence", "urgency_reasons", "entities", "explanation", "bot_answer", "model_intent", "language", "urgent_review", "review_reasons")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TOPIC_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    URGENCY_REASONS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    BOT_ANSWER_FIELD_NUMBER: _ClassVar[int]
    MODEL_INTENT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    URGENT_REVIEW_FIELD_NUMBER: _ClassVar[int]
    REVIEW_REASONS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    intent: Intent
    scores: _containers.RepeatedCompositeFieldContainer[IntentScore]
    topic: str
    topic_confidence: float
    urgency_reasons: _containers.RepeatedScalarFieldContainer[str]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    explanation: Explanation
    bot_answer: BotAnswer
    model_intent: Intent
    language: str
    urgent_review: bool
    review_reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, message_id: _Optional[str] = ..., intent: _Optional[_Union[Intent, str]] = ..., scores: _Optional[_Iterable[_Union[IntentScore, _Mapping]]] = ..., topic: _Optional[str] = ..., topic_confidence: _Optional[float] = ..., urgency_reasons: _Optional[_Iterable[str]] = ..., entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., bot_answer: _Optional[_Union[BotAnswer, _Mapping]] = ..., model_intent: _Optional[_Union[Intent, str]] = ..., language: _Optional[str] = ..., urgent_review: _Optional[bool] = ..., review_reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class TriageCorrection(_message.Message):
    __slots__ = ("message_id", "intent", "topic", "urgent", "corrected_by", "by_supervisor", "corrected_at", "note", "previous_intent", "previous_topic", "previous_urgent_review")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_FIELD_NUMBER: _ClassVar[int]
    BY_SUPERVISOR_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_INTENT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_TOPIC_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_URGENT_REVIEW_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    intent: Intent
    topic: str
    urgent: bool
    corrected_by: str
    by_supervisor: bool
    corrected_at: _timestamp_pb2.Timestamp
    note: str
    previous_intent: Intent
    previous_topic: str
    previous_urgent_review: bool
    def __init__(self, message_id: _Optional[str] = ..., intent: _Optional[_Union[Intent, str]] = ..., topic: _Optional[str] = ..., urgent: _Optional[bool] = ..., corrected_by: _Optional[str] = ..., by_supervisor: _Optional[bool] = ..., corrected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., previous_intent: _Optional[_Union[Intent, str]] = ..., previous_topic: _Optional[str] = ..., previous_urgent_review: _Optional[bool] = ...) -> None: ...

class RoutingDecision(_message.Message):
    __slots__ = ("conversation_id", "message_id", "action", "team", "tier", "agent_id", "priority", "rule", "reason", "sla_due_at", "bot_reply_text", "decided_at", "bot_answer_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SLA_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    BOT_REPLY_TEXT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    BOT_ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_id: str
    action: RouteAction
    team: str
    tier: str
    agent_id: str
    priority: float
    rule: str
    reason: str
    sla_due_at: _timestamp_pb2.Timestamp
    bot_reply_text: str
    decided_at: _timestamp_pb2.Timestamp
    bot_answer_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., message_id: _Optional[str] = ..., action: _Optional[_Union[RouteAction, str]] = ..., team: _Optional[str] = ..., tier: _Optional[str] = ..., agent_id: _Optional[str] = ..., priority: _Optional[float] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ..., sla_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bot_reply_text: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bot_answer_id: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "type", "conversation_id", "message_id", "occurred_at", "attributes")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    conversation_id: str
    message_id: str
    occurred_at: _timestamp_pb2.Timestamp
    attributes: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., conversation_id: _Optional[str] = ..., message_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
