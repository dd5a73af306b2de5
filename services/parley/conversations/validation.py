"""Request checks: each bad field is named by its path, e.g. `messages[2].message_id`."""

from __future__ import annotations

import re

from parley.config import Settings
from parley.enum_fields import unknown_enum_values
from parley.messages import CHANNEL_NAMES
from parley.rpc import InvalidArgument
from parley.v1 import common_pb2, conversations_pb2

from .metrics import GROUP_BY

MAX_PAGE_SIZE = 500
MAX_HANDLE_CHARS = 256


def _raise(violations: list[tuple[str, str]]) -> None:
    if violations:
        raise InvalidArgument(violations)


def thread_request(settings: Settings, request: conversations_pb2.ThreadRequest) -> None:
    if len(request.messages) > settings.max_batch:
        _raise([("messages", f"at most {settings.max_batch} messages per call, got {len(request.messages)}")])
    bad: list[tuple[str, str]] = []
    for i, m in enumerate(request.messages):
        at = f"messages[{i}]"
        if not m.message_id:
            bad.append((f"{at}.message_id", "required"))
        elif len(m.message_id) > settings.max_id_chars:
            bad.append((f"{at}.message_id", f"longer than {settings.max_id_chars} characters"))
        if m.channel not in CHANNEL_NAMES:
            bad.append((f"{at}.channel", "required: one of the supported channels"))
        if not m.brand_account_id:
            bad.append((f"{at}.brand_account_id", "required"))
        if m.direction != common_pb2.DIRECTION_OUTBOUND and not m.author.id:
            bad.append((f"{at}.author.id", "required for a customer message"))
        if len(m.text) > settings.max_text_chars:
            bad.append((f"{at}.text", f"longer than {settings.max_text_chars} characters"))
        for name in ("in_reply_to_id", "platform_thread_id"):
            if len(getattr(m, name)) > settings.max_id_chars:
                bad.append((f"{at}.{name}", f"longer than {settings.max_id_chars} characters"))
    named = {field for field, _ in bad}
    _raise(bad + [problem for problem in unknown_enum_values(request) if problem[0] not in named])


def record_outcomes_request(settings: Settings, request: conversations_pb2.RecordOutcomesRequest) -> None:
    if len(request.outcomes) > settings.max_batch:
        _raise([("outcomes", f"at most {settings.max_batch} outcomes per call, got {len(request.outcomes)}")])
    bad: list[tuple[str, str]] = []
    for i, o in enumerate(request.outcomes):
        if not o.conversation_id:
            bad.append((f"outcomes[{i}].conversation_id", "required"))
        if not o.message_id:
            bad.append((f"outcomes[{i}].message_id", "required"))
        if o.HasField("routing") and o.routing.message_id and o.routing.message_id != o.message_id:
            bad.append((f"outcomes[{i}].routing.message_id", "differs from outcomes[].message_id"))
    _raise(bad + unknown_enum_values(request))


def conversation_id(value: str) -> None:
    if not value:
        _raise([("conversation_id", "required")])


def get_request(request: conversations_pb2.GetConversationRequest) -> None:
    """One of conversation_id and message_id."""
    if request.conversation_id and request.message_id:
        _raise([("message_id", "give either conversation_id or message_id, not both")])
    if not request.message_id:
        conversation_id(request.conversation_id)


def batch_get_request(request: conversations_pb2.BatchGetConversationsRequest) -> None:
    bad = [
        (f"conversation_ids[{i}]", "required") for i, cid in enumerate(request.conversation_ids) if not cid
    ]
    if len(request.conversation_ids) > MAX_PAGE_SIZE:
        bad.append(("conversation_ids", f"at most {MAX_PAGE_SIZE}"))
    _raise(bad)


def list_request(request: conversations_pb2.ListConversationsRequest) -> None:
    bad: list[tuple[str, str]] = []
    if request.page_size < 0:
        bad.append(("page_size", "must not be negative"))
    elif request.page_size > MAX_PAGE_SIZE:
        bad.append(("page_size", f"at most {MAX_PAGE_SIZE}"))
    if request.state not in conversations_pb2.ConversationState.values():
        bad.append(("state", "unknown state"))
    if request.channel and request.channel not in CHANNEL_NAMES:
        bad.append(("channel", "unknown channel"))
    if len(request.owner_handle) > MAX_HANDLE_CHARS:
        bad.append(("owner_handle", f"at most {MAX_HANDLE_CHARS} characters"))
    if len(request.team) > MAX_HANDLE_CHARS:
        bad.append(("team", f"at most {MAX_HANDLE_CHARS} characters"))
    _raise(bad)


def metrics_request(request: conversations_pb2.GetMetricsRequest) -> None:
    bad: list[tuple[str, str]] = []
    if request.group_by not in GROUP_BY:
        bad.append(("group_by", "must be empty or one of channel, intent, topic, team"))
    if (
        request.HasField("start")
        and request.HasField("end")
        and request.end.ToNanoseconds() <= request.start.ToNanoseconds()
    ):
        bad.append(("end", "must be after start"))
    _raise(bad)


def _identity(value: conversations_pb2.Identity, at: str) -> list[tuple[str, str]]:
    bad = []
    if value.channel not in CHANNEL_NAMES:
        bad.append((f"{at}.channel", "required: one of the supported channels"))
    if not value.author_id:
        bad.append((f"{at}.author_id", "required"))
    return bad


def identity(value: conversations_pb2.Identity, at: str) -> None:
    _raise(_identity(value, at))


def link_request(request: conversations_pb2.LinkIdentitiesRequest) -> None:
    _raise(_identity(request.identity, "identity") + _identity(request.other, "other"))


def audit_request(request: conversations_pb2.ListAuditRecordsRequest) -> None:
    bad: list[tuple[str, str]] = []
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        bad.append(("page_size", f"must be between 0 and {MAX_PAGE_SIZE}"))
    if len(request.subject) > 256:
        bad.append(("subject", "longer than 256 characters"))
    if request.page_token and not re.fullmatch(r"\d{1,20}-\d{1,20}", request.page_token):
        bad.append(("page_token", "not a token from a previous ListAuditRecordsResponse"))
    _raise(bad)
