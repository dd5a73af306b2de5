"""A local HTTP server that plays X API v2, the Graph API and the WhatsApp Cloud API for the dispatch tests.

It checks each request as the network would (method, path, credentials, body fields), answers in the
network's format, and fails on command: a status with headers and a body, a request that never gets an
answer (the client times out), a dropped connection, or a post that is made and then never answered.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from parley.dispatch.rules import X_POST_LIMIT, x_weighted_length

X_TOKEN = "x-user-token"
PAGE_TOKEN = "page-token"
IG_TOKEN = "ig-token"
WA_TOKEN = "wa-token"
PAGE_ID = "PAGE1"
IG_ID = "IG1"
PHONE_ID = "PHONE1"
VERSION = "v21.0"


@dataclass
class Request:
    method: str
    path: str
    authorization: str
    query: dict[str, str]
    body: Any


@dataclass
class Posted:
    """Something the network now shows: where, to whom, and the text."""

    kind: str  # tweet | x_dm | fb_comment | ig_reply | page_message | whatsapp
    platform_id: str
    text: str
    public: bool
    body: dict[str, Any]
    path: str


@dataclass
class Fail:
    """What the next matching request gets instead of a normal answer."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    mode: str = "status"  # status | pass (answer normally) | hang | drop | post_then_hang | post_then_drop


class FakeNetwork:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.posted: list[Posted] = []
        self.refused: list[str] = []
        self._fails: deque[Fail] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.hung = asyncio.Event()  # set when a request is being held without an answer
        self._release = asyncio.Event()

    def fail_next(self, *fails: Fail) -> None:
        self._fails.extend(fails)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def public_texts(self) -> list[str]:
        return [p.text for p in self.posted if p.public]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(
            Request(
                request.method,
                request.path,
                request.headers.get("Authorization", ""),
                dict(request.query),
                body,
            )
        )
        fail = self._fails.popleft() if self._fails else None
        if fail and fail.mode == "pass":
            fail = None
        if fail and fail.mode == "status":
            return web.json_response(fail.body, status=fail.status, headers=fail.headers)
        if fail and fail.mode in ("hang", "drop"):
            return await self._no_answer(request, fail.mode)
        try:
            status, answer, posted = self._route(request, body)
        except Refused as refusal:
            self.refused.append(refusal.message)
            return web.json_response(refusal.answer, status=refusal.status)
        self.posted.append(posted)
        if fail and fail.mode in ("post_then_hang", "post_then_drop"):
            return await self._no_answer(request, fail.mode.removeprefix("post_then_"))
        return web.json_response(answer, status=status)

    async def _no_answer(self, request: web.Request, mode: str) -> web.StreamResponse:
        if mode == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        self.hung.set()
        await self._release.wait()
        return web.Response(status=504)

    def _next_id(self, prefix: str = "") -> str:
        return f"{prefix}{1_000_000 + next(self._ids)}"

    # --- the networks ------------------------------------------------------------------------------------

    def _route(self, request: web.Request, body: Any) -> tuple[int, dict[str, Any], Posted]:
        path = request.path
        if request.method != "POST":
            raise Refused(405, f"{request.method} {path}")
        if not isinstance(body, dict):
            raise Refused(400, "body is not a JSON object")
        parts = path.strip("/").split("/")
        if parts[0] == "2":
            return self._x(request, parts, body)
        if parts[0] == VERSION and len(parts) == 3:
            return self._graph(request, parts[1], parts[2], body)
        raise Refused(404, f"no route {path}")

    def _x(self, request: web.Request, parts: list[str], body: dict[str, Any]) -> tuple[int, dict, Posted]:
        if request.headers.get("Authorization") != f"Bearer {X_TOKEN}":
            raise Refused(401, "x: bad bearer token", {"title": "Unauthorized", "status": 401})
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise Refused(400, "x: text required", {"title": "Invalid Request", "detail": "text required"})
        if parts == ["2", "tweets"]:
            target = body.get("reply", {}).get("in_reply_to_tweet_id")
            if not isinstance(target, str) or not target or set(body) - {"text", "reply"}:
                raise Refused(400, "x: bad reply", {"detail": "reply.in_reply_to_tweet_id required"})
            if x_weighted_length(text) > X_POST_LIMIT:
                raise Refused(403, "x: too long", {"detail": "Your Tweet text is too long."})
            tweet_id = self._next_id()
            return (
                201,
                {"data": {"id": tweet_id, "text": text}},
                Posted("tweet", tweet_id, text, True, body, request.path),
            )
        dm_with = len(parts) == 5 and parts[1:3] == ["dm_conversations", "with"] and parts[4] == "messages"
        dm_conv = len(parts) == 4 and parts[1] == "dm_conversations" and parts[3] == "messages"
        if dm_with or dm_conv:
            event_id = self._next_id()
            conversation = parts[3] if dm_with else parts[2]
            answer = {"data": {"dm_conversation_id": conversation, "dm_event_id": event_id}}
            return 201, answer, Posted("x_dm", event_id, text, False, body, request.path)
        raise Refused(404, f"x: no route {request.path}")

    def _graph(
        self, request: web.Request, node: str, edge: str, body: dict[str, Any]
    ) -> tuple[int, dict, Posted]:
        token = request.query.get("access_token", "")
        bearer = request.headers.get("Authorization", "")
        if edge in ("comments", "replies"):
            expected = PAGE_TOKEN if edge == "comments" else IG_TOKEN
            if token != expected:
                raise _graph_error(190, "Invalid OAuth access token.")
            message = body.get("message")
            if not isinstance(message, str) or not message:
                raise _graph_error(100, "(#100) The parameter message is required")
            new_id = f"{node}_{self._next_id()}"
            kind = "fb_comment" if edge == "comments" else "ig_reply"
            return 200, {"id": new_id}, Posted(kind, new_id, message, True, body, request.path)
        if edge != "messages":
            raise Refused(404, f"graph: no edge {edge}")
        if node == PHONE_ID:
            return self._whatsapp(request, bearer, body)
        if node not in (PAGE_ID, IG_ID) or token != (PAGE_TOKEN if node == PAGE_ID else IG_TOKEN):
            raise _graph_error(190, "Invalid OAuth access token.")
        recipient = body.get("recipient")
        if (
            not isinstance(recipient, dict)
            or len(recipient) != 1
            or not set(recipient) <= {"id", "comment_id"}
        ):
            raise _graph_error(100, "(#100) recipient must hold exactly one of id, comment_id")
        messaging_type = body.get("messaging_type")
        if messaging_type not in ("RESPONSE", "MESSAGE_TAG") or (messaging_type == "MESSAGE_TAG") != (
            "tag" in body
        ):
            raise _graph_error(100, "(#100) messaging_type and tag do not agree")
        text = body.get("message", {}).get("text")
        if not isinstance(text, str) or not text:
            raise _graph_error(100, "(#100) message.text is required")
        message_id = self._next_id("m_")
        answer = {"recipient_id": recipient.get("id", "psid-of-commenter"), "message_id": message_id}
        return 200, answer, Posted("page_message", message_id, text, False, body, request.path)

    def _whatsapp(self, request: web.Request, bearer: str, body: dict[str, Any]) -> tuple[int, dict, Posted]:
        if bearer != f"Bearer {WA_TOKEN}":
            raise _graph_error(190, "Invalid OAuth access token.")
        if body.get("messaging_product") != "whatsapp" or not body.get("to"):
            raise _graph_error(100, "(#100) messaging_product and to are required")
        if body.get("type") == "text":
            text = body.get("text", {}).get("body")
        elif body.get("type") == "template":
            template = body.get("template", {})
            if not template.get("name") or not template.get("language", {}).get("code"):
                raise _graph_error(132000, "template name and language are required")
            text = template["components"][0]["parameters"][0]["text"]
        else:
            raise _graph_error(100, "(#100) unsupported type")
        if not isinstance(text, str) or not text:
            raise _graph_error(100, "(#100) text.body is required")
        wamid = self._next_id("wamid.")
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
            "messages": [{"id": wamid}],
        }
        return 200, answer, Posted("whatsapp", wamid, text, False, body, request.path)


class Refused(Exception):
    def __init__(self, status: int, message: str, answer: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.answer = answer or {"detail": message}


def _graph_error(code: int, message: str) -> Refused:
    return Refused(400, message, {"error": {"message": message, "type": "OAuthException", "code": code}})


def graph_error(code: int, message: str, transient: bool = False) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code, "is_transient": transient}}
