from parley.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyItem(_message.Message):
    __slots__ = ("message_id", "text", "channel", "visibility", "context", "brand_reply")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    BRAND_REPLY_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    text: str
    channel: _common_pb2.Channel
    visibility: _common_pb2.Visibility
    context: _containers.RepeatedScalarFieldContainer[str]
    brand_reply: str
    def __init__(self, message_id: _Optional[str] = ..., text: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., visibility: _Optional[_Union[_common_pb2.Visibility, str]] = ..., context: _Optional[_Iterable[str]] = ..., brand_reply: _Optional[str] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ClassifyItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ClassifyItem, _Mapping]]] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_common_pb2.Triage]
    def __init__(self, results: _Optional[_Iterable[_Union[_common_pb2.Triage, _Mapping]]] = ...) -> None: ...

class AnswerRequest(_message.Message):
    __slots__ = ("text", "channel")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    channel: _common_pb2.Channel
    def __init__(self, text: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ...) -> None: ...

class AnswerResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: _common_pb2.BotAnswer
    def __init__(self, answer: _Optional[_Union[_common_pb2.BotAnswer, _Mapping]] = ...) -> None: ...

class ModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfoResponse(_message.Message):
    __slots__ = ("model_version", "intents", "topics", "metrics", "knowledge_base_answers")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    KNOWLEDGE_BASE_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    intents: _containers.RepeatedScalarFieldContainer[_common_pb2.Intent]
    topics: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.ScalarMap[str, float]
    knowledge_base_answers: int
    def __init__(self, model_version: _Optional[str] = ..., intents: _Optional[_Iterable[_Union[_common_pb2.Intent, str]]] = ..., topics: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., knowledge_base_answers: _Optional[int] = ...) -> None: ...
