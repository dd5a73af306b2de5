"""The ClassifierService contract, through a real server on a free port."""

from collections.abc import AsyncIterator

import grpc
import pytest

from parley.classifier.server import create_server
from parley.config import Settings
from parley.rpc import RunningServer, channel, field_violations
from parley.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2


@pytest.fixture
async def stub(settings: Settings) -> AsyncIterator[classifier_pb2_grpc.ClassifierServiceStub]:
    settings = settings.model_copy(update={"max_batch": 4, "max_text_chars": 200})
    running: RunningServer = await create_server(settings, "127.0.0.1:0")
    async with channel(settings, f"127.0.0.1:{running.port}") as ch:
        yield classifier_pb2_grpc.ClassifierServiceStub(ch)
    await running.stop(0)


def item(i: int, text: str, ch: int = common_pb2.CHANNEL_X) -> classifier_pb2.ClassifyItem:
    return classifier_pb2.ClassifyItem(message_id=f"x:{i}", text=text, channel=ch)


async def test_classify_batch_in_order(stub: classifier_pb2_grpc.ClassifierServiceStub) -> None:
    reply = await stub.Classify(
        classifier_pb2.ClassifyRequest(
            items=[
                item(1, "someone logged into my account and changed my email"),
                item(2, "thanks, love the new app"),
                item(3, "how do I reset my password?"),
            ]
        )
    )
    urgent, praise, question = reply.results
    assert [r.message_id for r in reply.results] == ["x:1", "x:2", "x:3"]
    assert urgent.intent == common_pb2.INTENT_URGENT
    assert list(urgent.explanation.rules_fired) == ["account_takeover"]
    assert urgent.urgency_reasons[0].startswith("account_takeover: ")
    assert urgent.bot_answer.abstained
    assert praise.intent == common_pb2.INTENT_PRAISE
    assert question.intent == common_pb2.INTENT_QUESTION
    assert question.bot_answer.answer_id == "reset_password" and not question.bot_answer.abstained
    assert common_pb2.CHANNEL_X in question.bot_answer.allowed_channels
    for r in reply.results:
        assert {s.intent for s in r.scores} == {1, 2, 3, 4, 5}
        assert abs(sum(s.probability for s in r.scores) - 1.0) < 1e-6
        assert r.explanation.model_version and r.topic


async def test_answer_and_model_info(stub: classifier_pb2_grpc.ClassifierServiceStub) -> None:
    hit = await stub.Answer(classifier_pb2.AnswerRequest(text="when does online check-in open?"))
    assert hit.answer.answer_id == "checkin_time" and not hit.answer.abstained and hit.answer.text
    miss = await stub.Answer(classifier_pb2.AnswerRequest(text="your app is rubbish and crashes all day"))
    assert miss.answer.abstained and not miss.answer.text
    info = await stub.ModelInfo(classifier_pb2.ModelInfoRequest())
    assert info.model_version and len(info.intents) == 5
    assert list(info.topics) == [
        "billing",
        "orders_delivery",
        "account_access",
        "technical",
        "travel",
        "general",
    ]
    assert "macro_f1" in info.metrics and info.knowledge_base_answers >= 25


async def test_invalid_arguments_name_each_field(stub: classifier_pb2_grpc.ClassifierServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.Classify(classifier_pb2.ClassifyRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(empty.value)] == ["items"]

    with pytest.raises(grpc.aio.AioRpcError) as too_many:
        await stub.Classify(classifier_pb2.ClassifyRequest(items=[item(i, "hi") for i in range(5)]))
    assert [f for f, _ in field_violations(too_many.value)] == ["items"]

    bad = [item(0, "fine"), item(1, "   "), item(2, "x" * 201), item(3, "ok", ch=42)]
    with pytest.raises(grpc.aio.AioRpcError) as fields:
        await stub.Classify(classifier_pb2.ClassifyRequest(items=bad))
    assert fields.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(fields.value)] == [
        "items[1].text",
        "items[2].text",
        "items[3].channel",
    ]

    with pytest.raises(grpc.aio.AioRpcError) as answer:
        await stub.Answer(classifier_pb2.AnswerRequest(text=""))
    assert [f for f, _ in field_violations(answer.value)] == ["text"]


async def test_an_empty_text_is_triaged(stub: classifier_pb2_grpc.ClassifierServiceStub) -> None:
    # A photo alone reaches Classify with an empty text (ingestion accepts it beside attachments); refusing it
    # used to dead-letter the message after it had been acknowledged.
    reply = await stub.Classify(classifier_pb2.ClassifyRequest(items=[item(1, ""), item(2, "thanks!")]))
    photo, thanks = reply.results
    assert photo.message_id == "x:1" and photo.intent != common_pb2.INTENT_UNSPECIFIED
    assert photo.bot_answer.abstained  # nothing to answer
    assert thanks.intent == common_pb2.INTENT_PRAISE


async def test_brand_reply_reaches_the_model(stub: classifier_pb2_grpc.ClassifierServiceStub) -> None:
    text = "sure, the order number is 12345"
    reply = await stub.Classify(
        classifier_pb2.ClassifyRequest(
            items=[
                item(1, text),
                classifier_pb2.ClassifyItem(
                    message_id="x:2", text=text, brand_reply="Please DM us your order number?"
                ),
            ]
        )
    )
    alone, answering = reply.results
    assert [s.probability for s in alone.scores] != [s.probability for s in answering.scores]

    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await stub.Classify(
            classifier_pb2.ClassifyRequest(
                items=[classifier_pb2.ClassifyItem(message_id="x:3", text="ok", brand_reply="x" * 201)]
            )
        )
    assert [f for f, _ in field_violations(too_long.value)] == ["items[0].brand_reply"]
