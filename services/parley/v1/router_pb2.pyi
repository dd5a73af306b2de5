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

class Presence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESENCE_UNSPECIFIED: _ClassVar[Presence]
    PRESENCE_ONLINE: _ClassVar[Presence]
    PRESENCE_AWAY: _ClassVar[Presence]
    PRESENCE_OFFLINE: _ClassVar[Presence]
PRESENCE_UNSPECIFIED: Presence
PRESENCE_ONLINE: Presence
PRESENCE_AWAY: Presence
PRESENCE_OFFLINE: Presence

class RouteItem(_message.Message):
    __slots__ = ("conversation_id", "message", "triage", "opened_conversation", "customer_tier")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    OPENED_CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_TIER_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message: _common_pb2.InboundMessage
    triage: _common_pb2.Triage
    opened_conversation: bool
    customer_tier: str
    def __init__(self, conversation_id: _Optional[str] = ..., message: _Optional[_Union[_common_pb2.InboundMessage, _Mapping]] = ..., triage: _Optional[_Union[_common_pb2.Triage, _Mapping]] = ..., opened_conversation: _Optional[bool] = ..., customer_tier: _Optional[str] = ...) -> None: ...

class RouteRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RouteItem]
    def __init__(self, items: _Optional[_Iterable[_Union[RouteItem, _Mapping]]] = ...) -> None: ...

class RouteResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[_common_pb2.RoutingDecision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[_common_pb2.RoutingDecision, _Mapping]]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("conversation_id", "agent_id", "team", "priority", "assigned_at", "sla_due_at", "reason", "withdrawn")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    SLA_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    agent_id: str
    team: str
    priority: float
    assigned_at: _timestamp_pb2.Timestamp
    sla_due_at: _timestamp_pb2.Timestamp
    reason: str
    withdrawn: bool
    def __init__(self, conversation_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., team: _Optional[str] = ..., priority: _Optional[float] = ..., assigned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sla_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., withdrawn: _Optional[bool] = ...) -> None: ...

class WatchAssignmentsRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class WatchAssignmentsResponse(_message.Message):
    __slots__ = ("assignment",)
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ...) -> None: ...

class ClaimRequest(_message.Message):
    __slots__ = ("agent_id", "conversation_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    conversation_id: str
    def __init__(self, agent_id: _Optional[str] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class ClaimResponse(_message.Message):
    __slots__ = ("assignment", "claimed")
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    claimed: bool
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ..., claimed: _Optional[bool] = ...) -> None: ...

class DeclineRequest(_message.Message):
    __slots__ = ("agent_id", "conversation_id", "reason")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    conversation_id: str
    reason: str
    def __init__(self, agent_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeclineResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: str
    def __init__(self, team: _Optional[str] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("conversation_id", "to_team", "to_agent_id", "reason")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_TEAM_FIELD_NUMBER: _ClassVar[int]
    TO_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    to_team: str
    to_agent_id: str
    reason: str
    def __init__(self, conversation_id: _Optional[str] = ..., to_team: _Optional[str] = ..., to_agent_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TransferResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: _common_pb2.RoutingDecision
    def __init__(self, decision: _Optional[_Union[_common_pb2.RoutingDecision, _Mapping]] = ...) -> None: ...

class EscalateRequest(_message.Message):
    __slots__ = ("conversation_id", "reason")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    reason: str
    def __init__(self, conversation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EscalateResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: _common_pb2.RoutingDecision
    def __init__(self, decision: _Optional[_Union[_common_pb2.RoutingDecision, _Mapping]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("conversation_id", "agent_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    agent_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("resolved_at",)
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    resolved_at: _timestamp_pb2.Timestamp
    def __init__(self, resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetPresenceRequest(_message.Message):
    __slots__ = ("agent_id", "presence", "teams", "capacity", "skills")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    presence: Presence
    teams: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    skills: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., presence: _Optional[_Union[Presence, str]] = ..., teams: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., skills: _Optional[_Iterable[str]] = ...) -> None: ...

class SetPresenceResponse(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("team", "depth", "oldest_wait_seconds", "sla_at_risk", "agents_online", "sla_breached", "agents_available", "agents_away", "occupancy")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    OLDEST_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SLA_AT_RISK_FIELD_NUMBER: _ClassVar[int]
    AGENTS_ONLINE_FIELD_NUMBER: _ClassVar[int]
    SLA_BREACHED_FIELD_NUMBER: _ClassVar[int]
    AGENTS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    AGENTS_AWAY_FIELD_NUMBER: _ClassVar[int]
    OCCUPANCY_FIELD_NUMBER: _ClassVar[int]
    team: str
    depth: int
    oldest_wait_seconds: float
    sla_at_risk: int
    agents_online: int
    sla_breached: int
    agents_available: int
    agents_away: int
    occupancy: float
    def __init__(self, team: _Optional[str] = ..., depth: _Optional[int] = ..., oldest_wait_seconds: _Optional[float] = ..., sla_at_risk: _Optional[int] = ..., agents_online: _Optional[int] = ..., sla_breached: _Optional[int] = ..., agents_available: _Optional[int] = ..., agents_away: _Optional[int] = ..., occupancy: _Optional[float] = ...) -> None: ...

class ListQueuesResponse(_message.Message):
    __slots__ = ("queues",)
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStatus]
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueStatus, _Mapping]]] = ...) -> None: ...

class GetStaffingRequest(_message.Message):
    __slots__ = ("service_level", "target_answer_seconds")
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_ANSWER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    service_level: float
    target_answer_seconds: float
    def __init__(self, service_level: _Optional[float] = ..., target_answer_seconds: _Optional[float] = ...) -> None: ...

class QueueStaffing(_message.Message):
    __slots__ = ("team", "arrivals_per_hour", "mean_handling_seconds", "agents_needed", "expected_service_level", "agents_online")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ARRIVALS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    MEAN_HANDLING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_NEEDED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    AGENTS_ONLINE_FIELD_NUMBER: _ClassVar[int]
    team: str
    arrivals_per_hour: float
    mean_handling_seconds: float
    agents_needed: int
    expected_service_level: float
    agents_online: int
    def __init__(self, team: _Optional[str] = ..., arrivals_per_hour: _Optional[float] = ..., mean_handling_seconds: _Optional[float] = ..., agents_needed: _Optional[int] = ..., expected_service_level: _Optional[float] = ..., agents_online: _Optional[int] = ...) -> None: ...

class GetStaffingResponse(_message.Message):
    __slots__ = ("queues",)
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStaffing]
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueStaffing, _Mapping]]] = ...) -> None: ...

class GetRoutingAuditRequest(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class AuditCandidate(_message.Message):
    __slots__ = ("agent_id", "presence", "load", "capacity", "skill_match", "sticky", "eligible", "note")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    SKILL_MATCH_FIELD_NUMBER: _ClassVar[int]
    STICKY_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    presence: str
    load: int
    capacity: int
    skill_match: bool
    sticky: bool
    eligible: bool
    note: str
    def __init__(self, agent_id: _Optional[str] = ..., presence: _Optional[str] = ..., load: _Optional[int] = ..., capacity: _Optional[int] = ..., skill_match: _Optional[bool] = ..., sticky: _Optional[bool] = ..., eligible: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class RoutingAudit(_message.Message):
    __slots__ = ("kind", "message_id", "at", "rule", "action", "team", "agent_id", "priority", "priority_parts", "candidates", "why")
    class PriorityPartsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_PARTS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message_id: str
    at: _timestamp_pb2.Timestamp
    rule: str
    action: _common_pb2.RouteAction
    team: str
    agent_id: str
    priority: float
    priority_parts: _containers.ScalarMap[str, float]
    candidates: _containers.RepeatedCompositeFieldContainer[AuditCandidate]
    why: str
    def __init__(self, kind: _Optional[str] = ..., message_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rule: _Optional[str] = ..., action: _Optional[_Union[_common_pb2.RouteAction, str]] = ..., team: _Optional[str] = ..., agent_id: _Optional[str] = ..., priority: _Optional[float] = ..., priority_parts: _Optional[_Mapping[str, float]] = ..., candidates: _Optional[_Iterable[_Union[AuditCandidate, _Mapping]]] = ..., why: _Optional[str] = ...) -> None: ...

class GetRoutingAuditResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[RoutingAudit]
    def __init__(self, entries: _Optional[_Iterable[_Union[RoutingAudit, _Mapping]]] = ...) -> None: ...

class CorrectTriageRequest(_message.Message):
    __slots__ = ("conversation_id", "message_id", "agent_id", "supervisor", "intent", "topic", "urgent", "note")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUPERVISOR_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_id: str
    agent_id: str
    supervisor: bool
    intent: _common_pb2.Intent
    topic: str
    urgent: bool
    note: str
    def __init__(self, conversation_id: _Optional[str] = ..., message_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., supervisor: _Optional[bool] = ..., intent: _Optional[_Union[_common_pb2.Intent, str]] = ..., topic: _Optional[str] = ..., urgent: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class CorrectTriageResponse(_message.Message):
    __slots__ = ("correction",)
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    correction: _common_pb2.TriageCorrection
    def __init__(self, correction: _Optional[_Union[_common_pb2.TriageCorrection, _Mapping]] = ...) -> None: ...

class ReloadPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadPolicyResponse(_message.Message):
    __slots__ = ("reloaded", "source", "teams", "rules")
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    reloaded: bool
    source: str
    teams: int
    rules: int
    def __init__(self, reloaded: _Optional[bool] = ..., source: _Optional[str] = ..., teams: _Optional[int] = ..., rules: _Optional[int] = ...) -> None: ...
