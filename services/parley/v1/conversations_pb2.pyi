import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from parley.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConversationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_STATE_UNSPECIFIED: _ClassVar[ConversationState]
    CONVERSATION_STATE_NEW: _ClassVar[ConversationState]
    CONVERSATION_STATE_BOT: _ClassVar[ConversationState]
    CONVERSATION_STATE_QUEUED: _ClassVar[ConversationState]
    CONVERSATION_STATE_ASSIGNED: _ClassVar[ConversationState]
    CONVERSATION_STATE_WAITING_ON_CUSTOMER: _ClassVar[ConversationState]
    CONVERSATION_STATE_RESOLVED: _ClassVar[ConversationState]
    CONVERSATION_STATE_REOPENED: _ClassVar[ConversationState]
    CONVERSATION_STATE_CLOSED_NO_ACTION: _ClassVar[ConversationState]

class ParticipantRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTICIPANT_ROLE_UNSPECIFIED: _ClassVar[ParticipantRole]
    PARTICIPANT_ROLE_OWNER: _ClassVar[ParticipantRole]
    PARTICIPANT_ROLE_PARTICIPANT: _ClassVar[ParticipantRole]
    PARTICIPANT_ROLE_BRAND: _ClassVar[ParticipantRole]

class SlaStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLA_STATUS_UNSPECIFIED: _ClassVar[SlaStatus]
    SLA_STATUS_PENDING: _ClassVar[SlaStatus]
    SLA_STATUS_MET: _ClassVar[SlaStatus]
    SLA_STATUS_MISSED: _ClassVar[SlaStatus]
CONVERSATION_STATE_UNSPECIFIED: ConversationState
CONVERSATION_STATE_NEW: ConversationState
CONVERSATION_STATE_BOT: ConversationState
CONVERSATION_STATE_QUEUED: ConversationState
CONVERSATION_STATE_ASSIGNED: ConversationState
CONVERSATION_STATE_WAITING_ON_CUSTOMER: ConversationState
CONVERSATION_STATE_RESOLVED: ConversationState
CONVERSATION_STATE_REOPENED: ConversationState
CONVERSATION_STATE_CLOSED_NO_ACTION: ConversationState
PARTICIPANT_ROLE_UNSPECIFIED: ParticipantRole
PARTICIPANT_ROLE_OWNER: ParticipantRole
PARTICIPANT_ROLE_PARTICIPANT: ParticipantRole
PARTICIPANT_ROLE_BRAND: ParticipantRole
SLA_STATUS_UNSPECIFIED: SlaStatus
SLA_STATUS_PENDING: SlaStatus
SLA_STATUS_MET: SlaStatus
SLA_STATUS_MISSED: SlaStatus

class ThreadRequest(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.InboundMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.InboundMessage, _Mapping]]] = ...) -> None: ...

class ThreadResult(_message.Message):
    __slots__ = ("message_id", "conversation_id", "opened_conversation", "role", "state", "context", "held", "customer_tier", "moved_to_private", "brand_reply")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    OPENED_CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_TIER_FIELD_NUMBER: _ClassVar[int]
    MOVED_TO_PRIVATE_FIELD_NUMBER: _ClassVar[int]
    BRAND_REPLY_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    conversation_id: str
    opened_conversation: bool
    role: ParticipantRole
    state: ConversationState
    context: _containers.RepeatedScalarFieldContainer[str]
    held: bool
    customer_tier: str
    moved_to_private: bool
    brand_reply: str
    def __init__(self, message_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., opened_conversation: _Optional[bool] = ..., role: _Optional[_Union[ParticipantRole, str]] = ..., state: _Optional[_Union[ConversationState, str]] = ..., context: _Optional[_Iterable[str]] = ..., held: _Optional[bool] = ..., customer_tier: _Optional[str] = ..., moved_to_private: _Optional[bool] = ..., brand_reply: _Optional[str] = ...) -> None: ...

class ThreadResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ThreadResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ThreadResult, _Mapping]]] = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("conversation_id", "message_id", "triage", "routing")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_id: str
    triage: _common_pb2.Triage
    routing: _common_pb2.RoutingDecision
    def __init__(self, conversation_id: _Optional[str] = ..., message_id: _Optional[str] = ..., triage: _Optional[_Union[_common_pb2.Triage, _Mapping]] = ..., routing: _Optional[_Union[_common_pb2.RoutingDecision, _Mapping]] = ...) -> None: ...

class RecordOutcomesRequest(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[Outcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[Outcome, _Mapping]]] = ...) -> None: ...

class RecordOutcomesResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    def __init__(self, recorded: _Optional[int] = ...) -> None: ...

class ConversationMessage(_message.Message):
    __slots__ = ("message", "role", "triage", "routing")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    message: _common_pb2.InboundMessage
    role: ParticipantRole
    triage: _common_pb2.Triage
    routing: _common_pb2.RoutingDecision
    def __init__(self, message: _Optional[_Union[_common_pb2.InboundMessage, _Mapping]] = ..., role: _Optional[_Union[ParticipantRole, str]] = ..., triage: _Optional[_Union[_common_pb2.Triage, _Mapping]] = ..., routing: _Optional[_Union[_common_pb2.RoutingDecision, _Mapping]] = ...) -> None: ...

class Participant(_message.Message):
    __slots__ = ("author", "role")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    author: _common_pb2.Author
    role: ParticipantRole
    def __init__(self, author: _Optional[_Union[_common_pb2.Author, _Mapping]] = ..., role: _Optional[_Union[ParticipantRole, str]] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("state", "at", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: ConversationState
    at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, state: _Optional[_Union[ConversationState, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("conversation_id", "channel", "brand_account_id", "state", "owner", "participants", "messages", "transitions", "opened_at", "updated_at", "intent", "topic", "moved_to_private", "reopen_count", "previous_conversation_id", "profile", "metrics", "agents", "corrections")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    BRAND_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MOVED_TO_PRIVATE_FIELD_NUMBER: _ClassVar[int]
    REOPEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    channel: _common_pb2.Channel
    brand_account_id: str
    state: ConversationState
    owner: _common_pb2.Author
    participants: _containers.RepeatedCompositeFieldContainer[Participant]
    messages: _containers.RepeatedCompositeFieldContainer[ConversationMessage]
    transitions: _containers.RepeatedCompositeFieldContainer[Transition]
    opened_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    intent: _common_pb2.Intent
    topic: str
    moved_to_private: bool
    reopen_count: int
    previous_conversation_id: str
    profile: CustomerProfile
    metrics: ConversationMetrics
    agents: _containers.RepeatedScalarFieldContainer[str]
    corrections: _containers.RepeatedCompositeFieldContainer[_common_pb2.TriageCorrection]
    def __init__(self, conversation_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., brand_account_id: _Optional[str] = ..., state: _Optional[_Union[ConversationState, str]] = ..., owner: _Optional[_Union[_common_pb2.Author, _Mapping]] = ..., participants: _Optional[_Iterable[_Union[Participant, _Mapping]]] = ..., messages: _Optional[_Iterable[_Union[ConversationMessage, _Mapping]]] = ..., transitions: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., intent: _Optional[_Union[_common_pb2.Intent, str]] = ..., topic: _Optional[str] = ..., moved_to_private: _Optional[bool] = ..., reopen_count: _Optional[int] = ..., previous_conversation_id: _Optional[str] = ..., profile: _Optional[_Union[CustomerProfile, _Mapping]] = ..., metrics: _Optional[_Union[ConversationMetrics, _Mapping]] = ..., agents: _Optional[_Iterable[str]] = ..., corrections: _Optional[_Iterable[_Union[_common_pb2.TriageCorrection, _Mapping]]] = ...) -> None: ...

class ConversationMetrics(_message.Message):
    __slots__ = ("first_response_seconds", "bot_first_response_seconds", "human_first_response_seconds", "handling_seconds", "resolution_seconds", "messages", "agents_touched", "reopen_count", "moved_to_private", "sla", "sla_due_at")
    FIRST_RESPONSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BOT_FIRST_RESPONSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HUMAN_FIRST_RESPONSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HANDLING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_TOUCHED_FIELD_NUMBER: _ClassVar[int]
    REOPEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    MOVED_TO_PRIVATE_FIELD_NUMBER: _ClassVar[int]
    SLA_FIELD_NUMBER: _ClassVar[int]
    SLA_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    first_response_seconds: float
    bot_first_response_seconds: float
    human_first_response_seconds: float
    handling_seconds: float
    resolution_seconds: float
    messages: int
    agents_touched: int
    reopen_count: int
    moved_to_private: bool
    sla: SlaStatus
    sla_due_at: _timestamp_pb2.Timestamp
    def __init__(self, first_response_seconds: _Optional[float] = ..., bot_first_response_seconds: _Optional[float] = ..., human_first_response_seconds: _Optional[float] = ..., handling_seconds: _Optional[float] = ..., resolution_seconds: _Optional[float] = ..., messages: _Optional[int] = ..., agents_touched: _Optional[int] = ..., reopen_count: _Optional[int] = ..., moved_to_private: _Optional[bool] = ..., sla: _Optional[_Union[SlaStatus, str]] = ..., sla_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Identity(_message.Message):
    __slots__ = ("channel", "author_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    author_id: str
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., author_id: _Optional[str] = ...) -> None: ...

class PastConversation(_message.Message):
    __slots__ = ("conversation_id", "channel", "intent", "state", "opened_at")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    channel: _common_pb2.Channel
    intent: _common_pb2.Intent
    state: ConversationState
    opened_at: _timestamp_pb2.Timestamp
    def __init__(self, conversation_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., intent: _Optional[_Union[_common_pb2.Intent, str]] = ..., state: _Optional[_Union[ConversationState, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CustomerProfile(_message.Message):
    __slots__ = ("person_id", "identities", "follower_count", "verified", "tier", "conversations")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    identities: _containers.RepeatedCompositeFieldContainer[Identity]
    follower_count: int
    verified: bool
    tier: str
    conversations: _containers.RepeatedCompositeFieldContainer[PastConversation]
    def __init__(self, person_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[Identity, _Mapping]]] = ..., follower_count: _Optional[int] = ..., verified: _Optional[bool] = ..., tier: _Optional[str] = ..., conversations: _Optional[_Iterable[_Union[PastConversation, _Mapping]]] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("identity",)
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    identity: Identity
    def __init__(self, identity: _Optional[_Union[Identity, _Mapping]] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: CustomerProfile
    def __init__(self, profile: _Optional[_Union[CustomerProfile, _Mapping]] = ...) -> None: ...

class LinkIdentitiesRequest(_message.Message):
    __slots__ = ("identity", "other")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    identity: Identity
    other: Identity
    def __init__(self, identity: _Optional[_Union[Identity, _Mapping]] = ..., other: _Optional[_Union[Identity, _Mapping]] = ...) -> None: ...

class LinkIdentitiesResponse(_message.Message):
    __slots__ = ("person_id",)
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    def __init__(self, person_id: _Optional[str] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("conversation_id", "message_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class GetConversationResponse(_message.Message):
    __slots__ = ("conversation",)
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ...) -> None: ...

class BatchGetConversationsRequest(_message.Message):
    __slots__ = ("conversation_ids",)
    CONVERSATION_IDS_FIELD_NUMBER: _ClassVar[int]
    conversation_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, conversation_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetConversationsResponse(_message.Message):
    __slots__ = ("conversations", "missing_ids")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    missing_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., missing_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ConversationSummary(_message.Message):
    __slots__ = ("conversation_id", "channel", "state", "owner", "message_count", "opened_at", "updated_at", "intent", "topic", "team")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    channel: _common_pb2.Channel
    state: ConversationState
    owner: _common_pb2.Author
    message_count: int
    opened_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    intent: _common_pb2.Intent
    topic: str
    team: str
    def __init__(self, conversation_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., state: _Optional[_Union[ConversationState, str]] = ..., owner: _Optional[_Union[_common_pb2.Author, _Mapping]] = ..., message_count: _Optional[int] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., intent: _Optional[_Union[_common_pb2.Intent, str]] = ..., topic: _Optional[str] = ..., team: _Optional[str] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("state", "channel", "page_size", "page_token", "owner_handle", "team")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OWNER_HANDLE_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    state: ConversationState
    channel: _common_pb2.Channel
    page_size: int
    page_token: str
    owner_handle: str
    team: str
    def __init__(self, state: _Optional[_Union[ConversationState, str]] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., owner_handle: _Optional[str] = ..., team: _Optional[str] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next_page_token")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[ConversationSummary]
    next_page_token: str
    def __init__(self, conversations: _Optional[_Iterable[_Union[ConversationSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("start", "end", "group_by")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    group_by: str
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[str] = ...) -> None: ...

class Distribution(_message.Message):
    __slots__ = ("count", "mean", "p50", "p90", "p99")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    def __init__(self, count: _Optional[int] = ..., mean: _Optional[float] = ..., p50: _Optional[float] = ..., p90: _Optional[float] = ..., p99: _Optional[float] = ...) -> None: ...

class MetricsGroup(_message.Message):
    __slots__ = ("key", "conversations", "first_response_seconds", "bot_first_response_seconds", "human_first_response_seconds", "handling_seconds", "resolution_seconds", "messages", "agents_touched", "reopened", "moved_to_private", "sla_met", "sla_missed", "abandoned", "triage_corrections")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BOT_FIRST_RESPONSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HUMAN_FIRST_RESPONSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HANDLING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_TOUCHED_FIELD_NUMBER: _ClassVar[int]
    REOPENED_FIELD_NUMBER: _ClassVar[int]
    MOVED_TO_PRIVATE_FIELD_NUMBER: _ClassVar[int]
    SLA_MET_FIELD_NUMBER: _ClassVar[int]
    SLA_MISSED_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    key: str
    conversations: int
    first_response_seconds: Distribution
    bot_first_response_seconds: Distribution
    human_first_response_seconds: Distribution
    handling_seconds: Distribution
    resolution_seconds: Distribution
    messages: Distribution
    agents_touched: Distribution
    reopened: int
    moved_to_private: int
    sla_met: int
    sla_missed: int
    abandoned: int
    triage_corrections: int
    def __init__(self, key: _Optional[str] = ..., conversations: _Optional[int] = ..., first_response_seconds: _Optional[_Union[Distribution, _Mapping]] = ..., bot_first_response_seconds: _Optional[_Union[Distribution, _Mapping]] = ..., human_first_response_seconds: _Optional[_Union[Distribution, _Mapping]] = ..., handling_seconds: _Optional[_Union[Distribution, _Mapping]] = ..., resolution_seconds: _Optional[_Union[Distribution, _Mapping]] = ..., messages: _Optional[_Union[Distribution, _Mapping]] = ..., agents_touched: _Optional[_Union[Distribution, _Mapping]] = ..., reopened: _Optional[int] = ..., moved_to_private: _Optional[int] = ..., sla_met: _Optional[int] = ..., sla_missed: _Optional[int] = ..., abandoned: _Optional[int] = ..., triage_corrections: _Optional[int] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[MetricsGroup]
    def __init__(self, groups: _Optional[_Iterable[_Union[MetricsGroup, _Mapping]]] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("at", "subject", "scope", "method", "targets", "outcome")
    AT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    subject: str
    scope: str
    method: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    outcome: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[str] = ..., scope: _Optional[str] = ..., method: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ..., outcome: _Optional[str] = ...) -> None: ...

class ListAuditRecordsRequest(_message.Message):
    __slots__ = ("subject", "page_size", "page_token")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subject: str
    page_size: int
    page_token: str
    def __init__(self, subject: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditRecordsResponse(_message.Message):
    __slots__ = ("records", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class EraseCustomerRequest(_message.Message):
    __slots__ = ("identity",)
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    identity: Identity
    def __init__(self, identity: _Optional[_Union[Identity, _Mapping]] = ...) -> None: ...

class EraseCustomerResponse(_message.Message):
    __slots__ = ("person_id", "identities", "conversations", "messages", "deliveries", "outbox_lines")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_LINES_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    identities: int
    conversations: int
    messages: int
    deliveries: int
    outbox_lines: int
    def __init__(self, person_id: _Optional[str] = ..., identities: _Optional[int] = ..., conversations: _Optional[int] = ..., messages: _Optional[int] = ..., deliveries: _Optional[int] = ..., outbox_lines: _Optional[int] = ...) -> None: ...
