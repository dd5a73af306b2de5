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

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_MESSAGE_ACCEPTED: _ClassVar[EventType]
    EVENT_TYPE_MESSAGE_THREADED: _ClassVar[EventType]
    EVENT_TYPE_MESSAGE_PROCESSED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_OPENED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_STATE_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_MERGED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_MERGED_ROUTING: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_ROUTED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_ASSIGNED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_HELD: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_HOLD_RELEASED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_DECLINED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_TRANSFERRED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_ESCALATED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_REQUEUED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_RESOLVED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_SLA_AT_RISK: _ClassVar[EventType]
    EVENT_TYPE_TRIAGE_CORRECTED: _ClassVar[EventType]
    EVENT_TYPE_REPLY_SENT: _ClassVar[EventType]
    EVENT_TYPE_REPLY_RETRYING: _ClassVar[EventType]
    EVENT_TYPE_REPLY_DEAD_LETTERED: _ClassVar[EventType]
    EVENT_TYPE_REPLY_BLOCKED: _ClassVar[EventType]
    EVENT_TYPE_REPLY_MOVED_PRIVATE: _ClassVar[EventType]
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
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_MESSAGE_ACCEPTED: EventType
EVENT_TYPE_MESSAGE_THREADED: EventType
EVENT_TYPE_MESSAGE_PROCESSED: EventType
EVENT_TYPE_CONVERSATION_OPENED: EventType
EVENT_TYPE_CONVERSATION_STATE_CHANGED: EventType
EVENT_TYPE_CONVERSATION_MERGED: EventType
EVENT_TYPE_CONVERSATION_MERGED_ROUTING: EventType
EVENT_TYPE_CONVERSATION_ROUTED: EventType
EVENT_TYPE_CONVERSATION_ASSIGNED: EventType
EVENT_TYPE_CONVERSATION_HELD: EventType
EVENT_TYPE_CONVERSATION_HOLD_RELEASED: EventType
EVENT_TYPE_CONVERSATION_DECLINED: EventType
EVENT_TYPE_CONVERSATION_TRANSFERRED: EventType
EVENT_TYPE_CONVERSATION_ESCALATED: EventType
EVENT_TYPE_CONVERSATION_REQUEUED: EventType
EVENT_TYPE_CONVERSATION_RESOLVED: EventType
EVENT_TYPE_CONVERSATION_SLA_AT_RISK: EventType
EVENT_TYPE_TRIAGE_CORRECTED: EventType
EVENT_TYPE_REPLY_SENT: EventType
EVENT_TYPE_REPLY_RETRYING: EventType
EVENT_TYPE_REPLY_DEAD_LETTERED: EventType
EVENT_TYPE_REPLY_BLOCKED: EventType
EVENT_TYPE_REPLY_MOVED_PRIVATE: EventType

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
    __slots__ = ("id", "type", "conversation_id", "message_id", "occurred_at", "attributes", "event_type", "message_accepted", "message_threaded", "message_processed", "conversation_opened", "conversation_state_changed", "conversation_merged", "conversation_merged_routing", "conversation_routed", "conversation_assigned", "conversation_held", "conversation_hold_released", "conversation_declined", "conversation_transferred", "conversation_escalated", "conversation_requeued", "conversation_resolved", "conversation_sla_at_risk", "triage_corrected", "reply_sent", "reply_retrying", "reply_dead_lettered", "reply_blocked", "reply_moved_private")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_THREADED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_OPENED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_MERGED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_MERGED_ROUTING_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ROUTED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_HELD_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_HOLD_RELEASED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_DECLINED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TRANSFERRED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ESCALATED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_REQUEUED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_SLA_AT_RISK_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_CORRECTED_FIELD_NUMBER: _ClassVar[int]
    REPLY_SENT_FIELD_NUMBER: _ClassVar[int]
    REPLY_RETRYING_FIELD_NUMBER: _ClassVar[int]
    REPLY_DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    REPLY_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    REPLY_MOVED_PRIVATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    conversation_id: str
    message_id: str
    occurred_at: _timestamp_pb2.Timestamp
    attributes: _struct_pb2.Struct
    event_type: EventType
    message_accepted: MessageAcceptedEvent
    message_threaded: MessageThreadedEvent
    message_processed: MessageProcessedEvent
    conversation_opened: ConversationOpenedEvent
    conversation_state_changed: ConversationStateChangedEvent
    conversation_merged: ConversationMergedEvent
    conversation_merged_routing: ConversationMergedRoutingEvent
    conversation_routed: ConversationRoutedEvent
    conversation_assigned: ConversationAssignedEvent
    conversation_held: ConversationHeldEvent
    conversation_hold_released: ConversationHoldReleasedEvent
    conversation_declined: ConversationDeclinedEvent
    conversation_transferred: ConversationTransferredEvent
    conversation_escalated: ConversationEscalatedEvent
    conversation_requeued: ConversationRequeuedEvent
    conversation_resolved: ConversationResolvedEvent
    conversation_sla_at_risk: ConversationSlaAtRiskEvent
    triage_corrected: TriageCorrectedEvent
    reply_sent: ReplySentEvent
    reply_retrying: ReplyRetryingEvent
    reply_dead_lettered: ReplyDeadLetteredEvent
    reply_blocked: ReplyBlockedEvent
    reply_moved_private: ReplyMovedPrivateEvent
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., conversation_id: _Optional[str] = ..., message_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_type: _Optional[_Union[EventType, str]] = ..., message_accepted: _Optional[_Union[MessageAcceptedEvent, _Mapping]] = ..., message_threaded: _Optional[_Union[MessageThreadedEvent, _Mapping]] = ..., message_processed: _Optional[_Union[MessageProcessedEvent, _Mapping]] = ..., conversation_opened: _Optional[_Union[ConversationOpenedEvent, _Mapping]] = ..., conversation_state_changed: _Optional[_Union[ConversationStateChangedEvent, _Mapping]] = ..., conversation_merged: _Optional[_Union[ConversationMergedEvent, _Mapping]] = ..., conversation_merged_routing: _Optional[_Union[ConversationMergedRoutingEvent, _Mapping]] = ..., conversation_routed: _Optional[_Union[ConversationRoutedEvent, _Mapping]] = ..., conversation_assigned: _Optional[_Union[ConversationAssignedEvent, _Mapping]] = ..., conversation_held: _Optional[_Union[ConversationHeldEvent, _Mapping]] = ..., conversation_hold_released: _Optional[_Union[ConversationHoldReleasedEvent, _Mapping]] = ..., conversation_declined: _Optional[_Union[ConversationDeclinedEvent, _Mapping]] = ..., conversation_transferred: _Optional[_Union[ConversationTransferredEvent, _Mapping]] = ..., conversation_escalated: _Optional[_Union[ConversationEscalatedEvent, _Mapping]] = ..., conversation_requeued: _Optional[_Union[ConversationRequeuedEvent, _Mapping]] = ..., conversation_resolved: _Optional[_Union[ConversationResolvedEvent, _Mapping]] = ..., conversation_sla_at_risk: _Optional[_Union[ConversationSlaAtRiskEvent, _Mapping]] = ..., triage_corrected: _Optional[_Union[TriageCorrectedEvent, _Mapping]] = ..., reply_sent: _Optional[_Union[ReplySentEvent, _Mapping]] = ..., reply_retrying: _Optional[_Union[ReplyRetryingEvent, _Mapping]] = ..., reply_dead_lettered: _Optional[_Union[ReplyDeadLetteredEvent, _Mapping]] = ..., reply_blocked: _Optional[_Union[ReplyBlockedEvent, _Mapping]] = ..., reply_moved_private: _Optional[_Union[ReplyMovedPrivateEvent, _Mapping]] = ...) -> None: ...

class MessageAcceptedEvent(_message.Message):
    __slots__ = ("channel", "direction", "partition", "entry_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    channel: str
    direction: str
    partition: int
    entry_id: str
    def __init__(self, channel: _Optional[str] = ..., direction: _Optional[str] = ..., partition: _Optional[int] = ..., entry_id: _Optional[str] = ...) -> None: ...

class MessageThreadedEvent(_message.Message):
    __slots__ = ("role",)
    ROLE_FIELD_NUMBER: _ClassVar[int]
    role: int
    def __init__(self, role: _Optional[int] = ...) -> None: ...

class MessageProcessedEvent(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConversationOpenedEvent(_message.Message):
    __slots__ = ("channel", "previous_conversation_id", "reason")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    channel: str
    previous_conversation_id: str
    reason: str
    def __init__(self, channel: _Optional[str] = ..., previous_conversation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ConversationStateChangedEvent(_message.Message):
    __slots__ = ("to",)
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    to: int
    def __init__(self, to: _Optional[int] = ..., **kwargs) -> None: ...

class ConversationMergedEvent(_message.Message):
    __slots__ = ("into", "messages")
    INTO_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    into: str
    messages: int
    def __init__(self, into: _Optional[str] = ..., messages: _Optional[int] = ...) -> None: ...

class ConversationMergedRoutingEvent(_message.Message):
    __slots__ = ("into", "action", "agent_id", "withdrawn_agent", "team", "why")
    INTO_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_AGENT_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    into: str
    action: str
    agent_id: str
    withdrawn_agent: str
    team: str
    why: str
    def __init__(self, into: _Optional[str] = ..., action: _Optional[str] = ..., agent_id: _Optional[str] = ..., withdrawn_agent: _Optional[str] = ..., team: _Optional[str] = ..., why: _Optional[str] = ...) -> None: ...

class ConversationRoutedEvent(_message.Message):
    __slots__ = ("action", "team", "tier", "rule", "priority", "why")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    action: str
    team: str
    tier: str
    rule: str
    priority: float
    why: str
    def __init__(self, action: _Optional[str] = ..., team: _Optional[str] = ..., tier: _Optional[str] = ..., rule: _Optional[str] = ..., priority: _Optional[float] = ..., why: _Optional[str] = ...) -> None: ...

class ConversationAssignedEvent(_message.Message):
    __slots__ = ("agent_id", "team", "priority", "how", "why", "sticky", "held", "skill_match", "candidates")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    HOW_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    STICKY_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    SKILL_MATCH_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    team: str
    priority: float
    how: str
    why: str
    sticky: bool
    held: bool
    skill_match: bool
    candidates: int
    def __init__(self, agent_id: _Optional[str] = ..., team: _Optional[str] = ..., priority: _Optional[float] = ..., how: _Optional[str] = ..., why: _Optional[str] = ..., sticky: _Optional[bool] = ..., held: _Optional[bool] = ..., skill_match: _Optional[bool] = ..., candidates: _Optional[int] = ...) -> None: ...

class ConversationHeldEvent(_message.Message):
    __slots__ = ("team", "agent_id", "until", "why")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    team: str
    agent_id: str
    until: float
    why: str
    def __init__(self, team: _Optional[str] = ..., agent_id: _Optional[str] = ..., until: _Optional[float] = ..., why: _Optional[str] = ...) -> None: ...

class ConversationHoldReleasedEvent(_message.Message):
    __slots__ = ("team", "agent_id", "reason")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    team: str
    agent_id: str
    reason: str
    def __init__(self, team: _Optional[str] = ..., agent_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ConversationDeclinedEvent(_message.Message):
    __slots__ = ("agent_id", "team", "reason")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    team: str
    reason: str
    def __init__(self, agent_id: _Optional[str] = ..., team: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ConversationTransferredEvent(_message.Message):
    __slots__ = ("team",)
    FROM_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: str
    def __init__(self, team: _Optional[str] = ..., **kwargs) -> None: ...

class ConversationEscalatedEvent(_message.Message):
    __slots__ = ("team", "tier", "priority", "reason")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    team: str
    tier: str
    priority: float
    reason: str
    def __init__(self, team: _Optional[str] = ..., tier: _Optional[str] = ..., priority: _Optional[float] = ..., reason: _Optional[str] = ..., **kwargs) -> None: ...

class ConversationRequeuedEvent(_message.Message):
    __slots__ = ("team", "agent_id", "reason")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    team: str
    agent_id: str
    reason: str
    def __init__(self, team: _Optional[str] = ..., agent_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ConversationResolvedEvent(_message.Message):
    __slots__ = ("agent_id", "team")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    team: str
    def __init__(self, agent_id: _Optional[str] = ..., team: _Optional[str] = ...) -> None: ...

class ConversationSlaAtRiskEvent(_message.Message):
    __slots__ = ("team", "due_in_seconds", "escalated_to")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    DUE_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_TO_FIELD_NUMBER: _ClassVar[int]
    team: str
    due_in_seconds: float
    escalated_to: str
    def __init__(self, team: _Optional[str] = ..., due_in_seconds: _Optional[float] = ..., escalated_to: _Optional[str] = ...) -> None: ...

class TriageCorrectedEvent(_message.Message):
    __slots__ = ("by", "supervisor", "intent", "topic", "urgent")
    BY_FIELD_NUMBER: _ClassVar[int]
    SUPERVISOR_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    by: str
    supervisor: bool
    intent: str
    topic: str
    urgent: bool
    def __init__(self, by: _Optional[str] = ..., supervisor: _Optional[bool] = ..., intent: _Optional[str] = ..., topic: _Optional[str] = ..., urgent: _Optional[bool] = ...) -> None: ...

class ReplySentEvent(_message.Message):
    __slots__ = ("reply_id", "channel", "in_reply_to_id", "sent_by", "platform_message_ids", "attempts")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_BY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    channel: str
    in_reply_to_id: str
    sent_by: str
    platform_message_ids: _containers.RepeatedScalarFieldContainer[str]
    attempts: int
    def __init__(self, reply_id: _Optional[str] = ..., channel: _Optional[str] = ..., in_reply_to_id: _Optional[str] = ..., sent_by: _Optional[str] = ..., platform_message_ids: _Optional[_Iterable[str]] = ..., attempts: _Optional[int] = ...) -> None: ...

class ReplyRetryingEvent(_message.Message):
    __slots__ = ("reply_id", "channel", "in_reply_to_id", "sent_by", "error", "attempts", "next_attempt_at")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_BY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    channel: str
    in_reply_to_id: str
    sent_by: str
    error: str
    attempts: int
    next_attempt_at: float
    def __init__(self, reply_id: _Optional[str] = ..., channel: _Optional[str] = ..., in_reply_to_id: _Optional[str] = ..., sent_by: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., next_attempt_at: _Optional[float] = ...) -> None: ...

class ReplyDeadLetteredEvent(_message.Message):
    __slots__ = ("reply_id", "channel", "in_reply_to_id", "sent_by", "error", "attempts")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_BY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    channel: str
    in_reply_to_id: str
    sent_by: str
    error: str
    attempts: int
    def __init__(self, reply_id: _Optional[str] = ..., channel: _Optional[str] = ..., in_reply_to_id: _Optional[str] = ..., sent_by: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class ReplyBlockedEvent(_message.Message):
    __slots__ = ("reply_id", "channel", "in_reply_to_id", "sent_by", "error", "attempts", "entity_types")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_BY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_TYPES_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    channel: str
    in_reply_to_id: str
    sent_by: str
    error: str
    attempts: int
    entity_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reply_id: _Optional[str] = ..., channel: _Optional[str] = ..., in_reply_to_id: _Optional[str] = ..., sent_by: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., entity_types: _Optional[_Iterable[str]] = ...) -> None: ...

class ReplyMovedPrivateEvent(_message.Message):
    __slots__ = ("reply_id", "channel", "in_reply_to_id", "sent_by", "private_reply_id", "entity_types")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_BY_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_TYPES_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    channel: str
    in_reply_to_id: str
    sent_by: str
    private_reply_id: str
    entity_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reply_id: _Optional[str] = ..., channel: _Optional[str] = ..., in_reply_to_id: _Optional[str] = ..., sent_by: _Optional[str] = ..., private_reply_id: _Optional[str] = ..., entity_types: _Optional[_Iterable[str]] = ...) -> None: ...
