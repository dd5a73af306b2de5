"""ClassifierService: validates requests, calls the Triager, and maps results to protobuf."""

from __future__ import annotations

import asyncio

import grpc

from parley.classifier.knowledge import BotAnswer
from parley.classifier.model import INTENTS, TOPICS, Item, Triage, Triager
from parley.config import Settings
from parley.messages import CHANNEL_NAMES, CHANNELS_BY_NAME, INTENTS_BY_NAME
from parley.rpc import InvalidArgument, mapped_errors
from parley.telemetry import metrics
from parley.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2


def _check_text(
    violations: list[tuple[str, str]], path: str, text: str, max_chars: int, allow_empty: bool = False
) -> None:
    if allow_empty and text == "":
        return
    if not text.strip():
        violations.append((path, "must not be empty"))
    elif len(text) > max_chars:
        violations.append((path, f"must be at most {max_chars} characters (got {len(text)})"))


def validate_classify(request: classifier_pb2.ClassifyRequest, settings: Settings) -> None:
    """Raise InvalidArgument naming every bad field of a Classify request."""
    if not request.items:
        raise InvalidArgument([("items", "must not be empty")])
    if len(request.items) > settings.max_batch:
        raise InvalidArgument(
            [("items", f"must hold at most {settings.max_batch} items (got {len(request.items)})")]
        )
    violations: list[tuple[str, str]] = []
    for i, item in enumerate(request.items):
        # An empty text is a message of attachments alone (a photo, a sticker), which ingestion accepts: it is
        # triaged on its context like any other. Text of only whitespace is never sent and stays refused.
        _check_text(violations, f"items[{i}].text", item.text, settings.max_text_chars, allow_empty=True)
        if len(item.message_id) > settings.max_id_chars:
            violations.append(
                (f"items[{i}].message_id", f"must be at most {settings.max_id_chars} characters")
            )
        if item.channel and item.channel not in CHANNEL_NAMES:
            violations.append((f"items[{i}].channel", f"unknown channel {item.channel}"))
        if len(item.brand_reply) > settings.max_text_chars:
            violations.append(
                (f"items[{i}].brand_reply", f"must be at most {settings.max_text_chars} characters")
            )
        for j, turn in enumerate(item.context):
            if len(turn) > settings.max_text_chars:
                violations.append(
                    (f"items[{i}].context[{j}]", f"must be at most {settings.max_text_chars} characters")
                )
    if violations:
        raise InvalidArgument(violations)


def bot_answer_pb(answer: BotAnswer) -> common_pb2.BotAnswer:
    return common_pb2.BotAnswer(
        answer_id=answer.answer_id,
        text=answer.text,
        confidence=answer.confidence,
        abstained=answer.abstained,
        allowed_channels=[CHANNELS_BY_NAME[c] for c in answer.allowed_channels],
        topic=answer.topic,
    )


def triage_pb(t: Triage) -> common_pb2.Triage:
    return common_pb2.Triage(
        message_id=t.message_id,
        intent=INTENTS_BY_NAME[t.intent],
        scores=[
            common_pb2.IntentScore(intent=INTENTS_BY_NAME[k], probability=v) for k, v in t.scores.items()
        ],
        topic=t.topic,
        topic_confidence=t.topic_confidence,
        urgency_reasons=t.urgency_reasons,
        entities=[common_pb2.Entity(type=e.type, text=e.text, start=e.start, end=e.end) for e in t.entities],
        explanation=common_pb2.Explanation(
            model_version=t.explanation.model_version,
            top_features=[common_pb2.Evidence(name=n, weight=w) for n, w in t.explanation.top_features],
            rules_fired=t.explanation.rules_fired,
        ),
        bot_answer=bot_answer_pb(t.bot_answer),
        model_intent=INTENTS_BY_NAME[t.model_intent],
        language=t.language,
        urgent_review=t.urgent_review,
        review_reasons=t.review_reasons,
    )


class ClassifierServicer(classifier_pb2_grpc.ClassifierServiceServicer):
    def __init__(self, settings: Settings, triager: Triager) -> None:
        self.settings = settings
        self.triager = triager

    @mapped_errors
    async def Classify(
        self,
        request: classifier_pb2.ClassifyRequest,
        context: grpc.aio.ServicerContext[classifier_pb2.ClassifyRequest, classifier_pb2.ClassifyResponse],
    ) -> classifier_pb2.ClassifyResponse:
        validate_classify(request, self.settings)
        items = [
            Item(it.message_id, it.text, CHANNEL_NAMES.get(it.channel, ""), tuple(it.context), it.brand_reply)
            for it in request.items
        ]
        # The model call is CPU-bound: run it off the event loop so health checks and other calls stay served.
        results = await asyncio.to_thread(self.triager.classify, items)
        metrics.count_triage(results)
        return classifier_pb2.ClassifyResponse(results=[triage_pb(t) for t in results])

    @mapped_errors
    async def Answer(
        self,
        request: classifier_pb2.AnswerRequest,
        context: grpc.aio.ServicerContext[classifier_pb2.AnswerRequest, classifier_pb2.AnswerResponse],
    ) -> classifier_pb2.AnswerResponse:
        violations: list[tuple[str, str]] = []
        _check_text(violations, "text", request.text, self.settings.max_text_chars)
        if request.channel and request.channel not in CHANNEL_NAMES:
            violations.append(("channel", f"unknown channel {request.channel}"))
        if violations:
            raise InvalidArgument(violations)
        answer = await asyncio.to_thread(
            self.triager.answer, request.text, CHANNEL_NAMES.get(request.channel, "")
        )
        return classifier_pb2.AnswerResponse(answer=bot_answer_pb(answer))

    @mapped_errors
    async def ModelInfo(
        self,
        request: classifier_pb2.ModelInfoRequest,
        context: grpc.aio.ServicerContext[classifier_pb2.ModelInfoRequest, classifier_pb2.ModelInfoResponse],
    ) -> classifier_pb2.ModelInfoResponse:
        summary = self.triager.metrics.get("summary", {})
        return classifier_pb2.ModelInfoResponse(
            model_version=self.triager.version,
            intents=[INTENTS_BY_NAME[i] for i in INTENTS],
            topics=list(TOPICS),
            metrics={k: float(v) for k, v in summary.items()},
            knowledge_base_answers=len(self.triager.knowledge.answers),
        )
