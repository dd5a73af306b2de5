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

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_SENT: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_RETRYING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DEAD_LETTER: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_BLOCKED: _ClassVar[DeliveryStatus]
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_SENT: DeliveryStatus
DELIVERY_STATUS_RETRYING: DeliveryStatus
DELIVERY_STATUS_DEAD_LETTER: DeliveryStatus
DELIVERY_STATUS_BLOCKED: DeliveryStatus

class Reply(_message.Message):
    __slots__ = ("reply_id", "conversation_id", "channel", "visibility", "in_reply_to_id", "brand_account_id", "recipient", "text", "sent_by", "platform_thread_id", "customer_last_message_at", "private_reply_comment_id")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    BRAND_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_BY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_LAST_MESSAGE_AT_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_REPLY_COMMENT_ID_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    conversation_id: str
    channel: _common_pb2.Channel
    visibility: _common_pb2.Visibility
    in_reply_to_id: str
    brand_account_id: str
    recipient: _common_pb2.Author
    text: str
    sent_by: str
    platform_thread_id: str
    customer_last_message_at: _timestamp_pb2.Timestamp
    private_reply_comment_id: str
    def __init__(self, reply_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., visibility: _Optional[_Union[_common_pb2.Visibility, str]] = ..., in_reply_to_id: _Optional[str] = ..., brand_account_id: _Optional[str] = ..., recipient: _Optional[_Union[_common_pb2.Author, _Mapping]] = ..., text: _Optional[str] = ..., sent_by: _Optional[str] = ..., platform_thread_id: _Optional[str] = ..., customer_last_message_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., private_reply_comment_id: _Optional[str] = ...) -> None: ...

class SendReplyRequest(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[Reply]
    def __init__(self, replies: _Optional[_Iterable[_Union[Reply, _Mapping]]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("reply_id", "status", "platform_message_ids", "attempts", "error", "created_at", "updated_at", "channel", "visibility", "private_reply_id")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    status: DeliveryStatus
    platform_message_ids: _containers.RepeatedScalarFieldContainer[str]
    attempts: int
    error: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    channel: _common_pb2.Channel
    visibility: _common_pb2.Visibility
    private_reply_id: str
    def __init__(self, reply_id: _Optional[str] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., platform_message_ids: _Optional[_Iterable[str]] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., visibility: _Optional[_Union[_common_pb2.Visibility, str]] = ..., private_reply_id: _Optional[str] = ...) -> None: ...

class SendReplyResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class GetDeliveryRequest(_message.Message):
    __slots__ = ("reply_id",)
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    def __init__(self, reply_id: _Optional[str] = ...) -> None: ...

class GetDeliveryResponse(_message.Message):
    __slots__ = ("delivery",)
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

class ErasedRecipient(_message.Message):
    __slots__ = ("channel", "id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    id: str
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., id: _Optional[str] = ...) -> None: ...

class EraseRepliesRequest(_message.Message):
    __slots__ = ("conversation_ids", "recipients")
    CONVERSATION_IDS_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    conversation_ids: _containers.RepeatedScalarFieldContainer[str]
    recipients: _containers.RepeatedCompositeFieldContainer[ErasedRecipient]
    def __init__(self, conversation_ids: _Optional[_Iterable[str]] = ..., recipients: _Optional[_Iterable[_Union[ErasedRecipient, _Mapping]]] = ...) -> None: ...

class EraseRepliesResponse(_message.Message):
    __slots__ = ("deliveries", "outbox_lines")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_LINES_FIELD_NUMBER: _ClassVar[int]
    deliveries: int
    outbox_lines: int
    def __init__(self, deliveries: _Optional[int] = ..., outbox_lines: _Optional[int] = ...) -> None: ...
