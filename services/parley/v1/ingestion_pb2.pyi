from parley.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INGEST_STATUS_UNSPECIFIED: _ClassVar[IngestStatus]
    INGEST_STATUS_ACCEPTED: _ClassVar[IngestStatus]
    INGEST_STATUS_DUPLICATE: _ClassVar[IngestStatus]
INGEST_STATUS_UNSPECIFIED: IngestStatus
INGEST_STATUS_ACCEPTED: IngestStatus
INGEST_STATUS_DUPLICATE: IngestStatus

class IngestRequest(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.InboundMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.InboundMessage, _Mapping]]] = ...) -> None: ...

class IngestResult(_message.Message):
    __slots__ = ("message_id", "status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: IngestStatus
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[IngestStatus, str]] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IngestResult]
    def __init__(self, results: _Optional[_Iterable[_Union[IngestResult, _Mapping]]] = ...) -> None: ...

class IngestStreamRequest(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.InboundMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.InboundMessage, _Mapping]]] = ...) -> None: ...

class IngestStreamResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IngestResult]
    def __init__(self, results: _Optional[_Iterable[_Union[IngestResult, _Mapping]]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("types", "after_id", "conversation_id", "batched")
    TYPES_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    BATCHED_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedScalarFieldContainer[str]
    after_id: str
    conversation_id: str
    batched: bool
    def __init__(self, types: _Optional[_Iterable[str]] = ..., after_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., batched: _Optional[bool] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("event", "events")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.Event]
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., events: _Optional[_Iterable[_Union[_common_pb2.Event, _Mapping]]] = ...) -> None: ...

class GetPipelineRequest(_message.Message):
    __slots__ = ("dead_letter_limit",)
    DEAD_LETTER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    dead_letter_limit: int
    def __init__(self, dead_letter_limit: _Optional[int] = ...) -> None: ...

class PartitionStatus(_message.Message):
    __slots__ = ("partition", "backlog", "pending", "lag", "oldest_age_seconds")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    OLDEST_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    partition: int
    backlog: int
    pending: int
    lag: int
    oldest_age_seconds: float
    def __init__(self, partition: _Optional[int] = ..., backlog: _Optional[int] = ..., pending: _Optional[int] = ..., lag: _Optional[int] = ..., oldest_age_seconds: _Optional[float] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("message_id", "partition", "stage", "reason", "message")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    partition: int
    stage: str
    reason: str
    message: _common_pb2.InboundMessage
    def __init__(self, message_id: _Optional[str] = ..., partition: _Optional[int] = ..., stage: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[_Union[_common_pb2.InboundMessage, _Mapping]] = ...) -> None: ...

class PipelineWorker(_message.Message):
    __slots__ = ("name", "pending", "idle_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    pending: int
    idle_seconds: float
    def __init__(self, name: _Optional[str] = ..., pending: _Optional[int] = ..., idle_seconds: _Optional[float] = ...) -> None: ...

class GetPipelineResponse(_message.Message):
    __slots__ = ("partitions", "dead_letters", "dead_letter_count", "workers")
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_COUNT_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionStatus]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    dead_letter_count: int
    workers: _containers.RepeatedCompositeFieldContainer[PipelineWorker]
    def __init__(self, partitions: _Optional[_Iterable[_Union[PartitionStatus, _Mapping]]] = ..., dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., dead_letter_count: _Optional[int] = ..., workers: _Optional[_Iterable[_Union[PipelineWorker, _Mapping]]] = ...) -> None: ...

class RequeueDeadLetterRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class RequeueDeadLetterResponse(_message.Message):
    __slots__ = ("partition", "entry_id")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    partition: int
    entry_id: str
    def __init__(self, partition: _Optional[int] = ..., entry_id: _Optional[str] = ...) -> None: ...
