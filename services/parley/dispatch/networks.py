"""Adapters that post through the networks' own HTTP APIs: X API v2, the Graph API (Facebook, Messenger,
Instagram) and the WhatsApp Cloud API.

Each adapter keeps one aiohttp session (opened on first use, closed on shutdown), caps its requests in
flight, and times each request out before another dispatch loop could re-claim the delivery (marking a part
started also renews the loop's claim, so a long thread is never taken over while it progresses). Failures
are sorted the way the dispatcher retries them: timeouts, dropped connections, 5xx, 429 and the Graph API's
rate-limit and transient codes are retryable (with the network's Retry-After / x-rate-limit-reset); any
other 4xx is permanent and carries the network's own error.

Multi-part replies (X threads) keep per-part progress through `PartProgress`: a resumed delivery continues
after the last part posted, each part replying to the one before. The networks take no idempotency key, so
a part is marked started before its call; a part found started but never recorded (the process died between
the call and the record) may be on the network, and `dispatch_unconfirmed_part_policy` decides: "dead_letter"
(the default) stops there with that reason rather than risk posting it twice, "repost" sends it again.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from pydantic import SecretStr

from parley.clock import Clock
from parley.config import Settings, reveal
from parley.dispatch import guard
from parley.dispatch.base import ChannelAdapter, PartProgress, PermanentError, RetryableError
from parley.dispatch.rules import Refusal
from parley.messages import CHANNEL_NAMES
from parley.v1 import common_pb2, dispatch_pb2

# Graph API error codes that mean "later": unknown/temporary (1, 2), app, user, page and business-use-case
# rate limits (4, 17, 32, 613, 80001-80014), and WhatsApp's throughput and pair rate limits.
GRAPH_RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 130429, 131000, 131048, 131056}) | frozenset(
    range(80001, 80015)
)


def _stopping() -> bool:
    """Whether the running task has been asked to stop (a cancellation is pending)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """The wait a 429 or 503 asks for: `Retry-After` (seconds or an HTTP date), else X's
    `x-rate-limit-reset` (epoch seconds). None when the response gives no hint."""
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    reset = headers.get("x-rate-limit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now)
    return None


class HttpAdapter(ChannelAdapter):
    """The shared part: the session, the limits, error sorting and per-part progress."""

    name = "http"

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        claim_seconds = settings.claim_idle_ms / 1000
        if settings.dispatch_http_timeout_seconds >= claim_seconds:
            raise ValueError(
                f"dispatch_http_timeout_seconds ({settings.dispatch_http_timeout_seconds}) must be below"
                f" claim_idle_ms ({settings.claim_idle_ms} ms): a slow call must end before a takeover"
            )
        self.timeout = settings.dispatch_http_timeout_seconds
        self._gate = asyncio.Semaphore(max(1, settings.dispatch_network_concurrency))
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._paused_until = 0.0  # a 429 pauses every request to this network until then

    def session(self) -> aiohttp.ClientSession:
        if self._closed:
            # A call still running at shutdown: it is retried by the next process, not on a new session.
            raise RetryableError(f"{self.name}: shutting down")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "parley-dispatch"},
            )
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        posted, unconfirmed = await progress.load() if progress else ({}, set())
        ids: list[str] = []
        for index, text in enumerate(parts):
            if index in posted:
                ids.append(posted[index])
                continue
            where = f"part {index + 1} of {len(parts)}" if len(parts) > 1 else "the reply"
            if index in unconfirmed and self.settings.dispatch_unconfirmed_part_policy != "repost":
                raise PermanentError(
                    f"{where} may already be posted: an earlier attempt died between the call and its"
                    " record; not sent again so it cannot appear twice (check the network)"
                    + _posted_note(ids)
                )
            # Marked started only once a request slot is ours: a part still waiting for one is not in doubt.
            async with self._gate:
                if _stopping():
                    # A stop swallowed on the way here (redis-py's wait_for can on Python 3.11): begin no call
                    # that the closing process would cut short and leave in doubt.
                    raise asyncio.CancelledError(f"{self.name}: stopping before {where}")
                if progress:
                    await progress.started(index)
                try:
                    platform_id = await self.post_part(reply, text, ids[-1] if ids else None)
                except RetryableError as error:
                    if progress:
                        await progress.failed(index)
                    raise RetryableError(error.reason + _posted_note(ids), error.retry_after) from None
                except PermanentError as error:
                    if progress:
                        await progress.failed(index)
                    raise PermanentError(error.reason + _posted_note(ids)) from None
                if progress:
                    await progress.posted(index, platform_id)
            ids.append(platform_id)
        return ids

    async def post_part(self, reply: dispatch_pb2.Reply, text: str, previous_id: str | None) -> str:
        """Post one part (`previous_id`: the part before it in a thread) and return its platform id."""
        raise NotImplementedError

    async def call(
        self,
        url: str,
        body: dict[str, Any],
        *,
        bearer: SecretStr | str = "",
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST `body` as JSON; the decoded answer, or RetryableError / PermanentError."""
        now = self.clock.now()
        if now < self._paused_until:
            wait = self._paused_until - now
            raise RetryableError(f"{self.name}: rate limited for {wait:.0f} more seconds", retry_after=wait)
        token = reveal(bearer)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self.session().post(url, json=body, headers=headers, params=params) as response:
                status = response.status
                answer_headers = response.headers
                raw = await response.read()
        except (TimeoutError, aiohttp.ClientError) as error:
            if _stopping():
                # The process is stopping and the client reported the cut as an error of its own: the network
                # may have taken the post, so the part must stay "started" (in doubt), never be retried.
                raise asyncio.CancelledError(f"{self.name}: stopped mid-call") from error
            raise self._transient(error) from None
        data = _decode(raw)
        if status < 400:
            return data
        detail = self.error_detail(data) or raw[:200].decode(errors="replace")
        if status == 429:
            asked = retry_after_seconds(answer_headers, self.clock.now())
            if asked is not None:
                self._paused_until = max(self._paused_until, self.clock.now() + asked)
            raise RetryableError(f"{self.name}: 429 rate limited: {detail}", retry_after=asked)
        if status >= 500:
            raise RetryableError(
                f"{self.name}: {status}: {detail}",
                retry_after=retry_after_seconds(answer_headers, self.clock.now()),
            )
        if self.retryable_refusal(data):
            raise RetryableError(f"{self.name}: {status}: {detail}")
        raise PermanentError(f"{self.name}: {status}: {detail}")

    def _transient(self, error: Exception) -> Exception:
        if isinstance(error, TimeoutError):
            return RetryableError(f"{self.name}: no answer within {self.timeout:g}s")
        if isinstance(error, aiohttp.ClientConnectorError):
            return RetryableError(f"{self.name}: cannot connect ({error.os_error})")
        if isinstance(error, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
            return RetryableError(f"{self.name}: connection dropped ({type(error).__name__})")
        return error

    def error_detail(self, data: dict[str, Any]) -> str:
        return ""

    def retryable_refusal(self, data: dict[str, Any]) -> bool:
        """A 4xx that is a rate limit or a transient fault in the network's own terms."""
        return False


class XAdapter(HttpAdapter):
    """X API v2 with an OAuth 2.0 user-context token: public replies (threads reply to the part before) and
    DMs (to an existing DM conversation when the reply names one, else one-to-one with the recipient)."""

    name = "x"

    def __init__(self, settings: Settings, clock: Clock) -> None:
        super().__init__(settings, clock)
        self.base = settings.dispatch_x_base_url.rstrip("/")
        self.token = settings.dispatch_x_bearer_token

    async def post_part(self, reply: dispatch_pb2.Reply, text: str, previous_id: str | None) -> str:
        _require_channel(reply, common_pb2.CHANNEL_X)
        if reply.visibility == common_pb2.VISIBILITY_PUBLIC:
            body = {"text": text, "reply": {"in_reply_to_tweet_id": previous_id or reply.in_reply_to_id}}
            data = await self.call(f"{self.base}/2/tweets", body, bearer=self.token)
            return _field(data, "x", "data", "id")
        if reply.platform_thread_id:
            url = f"{self.base}/2/dm_conversations/{reply.platform_thread_id}/messages"
        else:
            url = f"{self.base}/2/dm_conversations/with/{reply.recipient.id}/messages"
        data = await self.call(url, {"text": text}, bearer=self.token)
        # The event id is under "data" (as the API answers) or at the top (as its reference shows).
        return _field(data.get("data") if isinstance(data.get("data"), dict) else data, "x", "dm_event_id")

    def error_detail(self, data: dict[str, Any]) -> str:
        if data.get("detail") or data.get("title"):
            return str(data.get("detail") or data.get("title"))
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("detail") or "")
        return ""


class GraphAdapter(HttpAdapter):
    """The Graph API's error format and rate-limit codes, shared by Meta's networks."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        super().__init__(settings, clock)
        self.base = f"{settings.dispatch_graph_base_url.rstrip('/')}/{settings.dispatch_graph_version}"

    def error_detail(self, data: dict[str, Any]) -> str:
        error = data.get("error")
        if not isinstance(error, dict):
            return ""
        code = error.get("code")
        sub = error.get("error_subcode")
        tag = f" (code {code}" + (f", subcode {sub}" if sub else "") + ")" if code is not None else ""
        return f"{error.get('message', '')}{tag}"

    def retryable_refusal(self, data: dict[str, Any]) -> bool:
        error = data.get("error")
        if not isinstance(error, dict):
            return False
        return bool(error.get("is_transient")) or error.get("code") in GRAPH_RETRYABLE_CODES


class MetaAdapter(GraphAdapter):
    """Facebook Page comment replies and private replies, the Messenger Send API, and Instagram comment
    replies and DMs, with the Page (or Instagram) access token as `access_token`, as Meta's references show.

    Outside the 24-hour window a Messenger or Instagram DM goes as MESSAGE_TAG with the configured tag."""

    name = "meta"

    async def post_part(self, reply: dispatch_pb2.Reply, text: str, previous_id: str | None) -> str:
        s = self.settings
        channel = reply.channel
        if channel == common_pb2.CHANNEL_INSTAGRAM:
            token = reveal(s.dispatch_instagram_token) or reveal(s.dispatch_facebook_page_token)
            account = reply.brand_account_id or s.dispatch_instagram_account_id
        elif channel in (common_pb2.CHANNEL_FACEBOOK, common_pb2.CHANNEL_MESSENGER):
            token = reveal(s.dispatch_facebook_page_token)
            account = reply.brand_account_id or s.dispatch_facebook_page_id
        else:
            raise PermanentError(f"meta: cannot post on {CHANNEL_NAMES.get(channel, channel)}")
        params = {"access_token": token}
        if reply.visibility == common_pb2.VISIBILITY_PUBLIC:
            edge = "replies" if channel == common_pb2.CHANNEL_INSTAGRAM else "comments"
            data = await self.call(
                f"{self.base}/{reply.in_reply_to_id}/{edge}", {"message": text}, params=params
            )
            return _field(data, "meta", "id")
        comment = reply.private_reply_comment_id or (
            reply.in_reply_to_id if channel == common_pb2.CHANNEL_FACEBOOK and not reply.recipient.id else ""
        )
        recipient = {"comment_id": comment} if comment else {"id": reply.recipient.id}
        body: dict[str, Any] = {
            "recipient": recipient,
            "messaging_type": "RESPONSE",
            "message": {"text": text},
        }
        mode = guard.window(reply, self.clock.now(), s)
        if isinstance(mode, Refusal):
            raise PermanentError(mode.reason)
        if mode == "tag":
            body["messaging_type"] = "MESSAGE_TAG"
            body["tag"] = s.dispatch_messenger_message_tag
        data = await self.call(f"{self.base}/{account}/messages", body, params=params)
        return _field(data, "meta", "message_id")


class WhatsAppAdapter(GraphAdapter):
    """WhatsApp Cloud API messages from the business phone number, with a Bearer token: a text answering the
    customer's message (`context.message_id`) within the window, the approved template outside it."""

    name = "whatsapp"

    async def post_part(self, reply: dispatch_pb2.Reply, text: str, previous_id: str | None) -> str:
        _require_channel(reply, common_pb2.CHANNEL_WHATSAPP)
        s = self.settings
        phone_number_id = reply.brand_account_id or s.dispatch_whatsapp_phone_number_id
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": reply.recipient.id,
        }
        mode = guard.window(reply, self.clock.now(), s)
        if isinstance(mode, Refusal):
            raise PermanentError(mode.reason)
        if mode == "template":
            body["type"] = "template"
            body["template"] = {
                "name": s.dispatch_whatsapp_template,
                "language": {"code": s.dispatch_whatsapp_template_language},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": text}]}],
            }
        else:
            body["type"] = "text"
            body["text"] = {"preview_url": False, "body": text}
            if reply.in_reply_to_id:
                body["context"] = {"message_id": reply.in_reply_to_id}
        data = await self.call(
            f"{self.base}/{phone_number_id}/messages", body, bearer=s.dispatch_whatsapp_token
        )
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
            raise PermanentError(f"whatsapp: answer without a message id: {json.dumps(data)[:200]}")
        return _field(messages[0], "whatsapp", "id")


def _require_channel(reply: dispatch_pb2.Reply, channel: int) -> None:
    if reply.channel != channel:
        raise PermanentError(f"cannot post a {CHANNEL_NAMES.get(reply.channel, reply.channel)} reply here")


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _field(data: Any, network: str, *path: str) -> str:
    """A string field of a success answer; a 2xx without it is a contract break (not retried: it may have
    posted)."""
    value = data
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    if not isinstance(value, (str, int)) or value == "":
        raise PermanentError(f"{network}: answer without {'.'.join(path)}: {json.dumps(data)[:200]}")
    return str(value)


def _posted_note(ids: Sequence[str]) -> str:
    return f" (parts already posted: {', '.join(ids)})" if ids else ""
