"""Authentication on real servers: bearer tokens (shared secret, JWKS file and URL), what is open without one,
TLS and mTLS, turning auth off, `parley token`, the local secret, and the audit trail."""

from __future__ import annotations

import datetime
import json
import logging
import stat
import time
import uuid
from pathlib import Path

import grpc
import jwt
import pytest
from aiohttp import web
from auth_kit import assign, call, servers, token
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pydantic import SecretStr
from typer.testing import CliRunner

from parley import rpc
from parley.audit import AuditTrail
from parley.auth import (
    LOCAL_ISSUER,
    Principal,
    TokenSource,
    Unauthenticated,
    Verifier,
    ensure_local_secret,
    jwt_secret,
    mint,
)
from parley.authz import AGENT, INTERNAL, SUPERVISOR
from parley.cli import app
from parley.config import Settings
from parley.ports import free_port
from parley.store import Keys, Redis
from parley.v1 import conversations_pb2, conversations_pb2_grpc, router_pb2, router_pb2_grpc

LIST_QUEUES = "/parley.v1.RouterService/ListQueues"
ROUTE = "/parley.v1.RouterService/Route"
RESOLVE = "/parley.v1.RouterService/Resolve"
LIST_AUDIT = "/parley.v1.ConversationsService/ListAuditRecords"


async def raw_call(address: str, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.AioRpcError | None:
    """ListQueues over a bare channel with exactly `metadata` (no token of its own)."""
    async with grpc.aio.insecure_channel(address) as ch:
        stub = ch.unary_unary(LIST_QUEUES, request_serializer=router_pb2.ListQueuesRequest.SerializeToString)
        try:
            await stub(router_pb2.ListQueuesRequest(), metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as error:
            return error
    return None


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base = {
        "iss": LOCAL_ISSUER,
        "aud": "parley",
        "sub": "sue",
        "scope": SUPERVISOR,
        "iat": now,
        "exp": now + 60,
    }
    return base | overrides


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ((), "missing credentials"),
        ((("authorization", "Basic c3VlOnB3"),), "must be 'Bearer <token>'"),
        ((("authorization", "Bearer not-a-jwt"),), "invalid bearer token"),
    ],
)
async def test_missing_or_malformed_credentials_are_unauthenticated(
    settings: Settings, metadata: tuple, says: str
) -> None:
    async with servers(settings, "router") as addresses:
        error = await raw_call(addresses["router"], metadata)
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert says in error.details()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda secret: jwt.encode(claims(exp=int(time.time()) - 5), secret, "HS256"), "expired"),
        (
            lambda secret: jwt.encode(claims(), "another-secret-" + "x" * 32, "HS256"),
            "Signature verification",
        ),
        (lambda secret: jwt.encode(claims(aud="someone-else"), secret, "HS256"), "Audience"),
        (lambda secret: jwt.encode(claims(iss="someone-else"), secret, "HS256"), "issuer"),
        (lambda secret: jwt.encode(claims(), None, "none"), "algorithm 'none' is not accepted"),
        (
            lambda secret: jwt.encode({k: v for k, v in claims().items() if k != "sub"}, secret, "HS256"),
            "sub",
        ),
    ],
    ids=["expired", "wrong-secret", "wrong-audience", "wrong-issuer", "alg-none", "no-subject"],
)
async def test_bad_tokens_are_unauthenticated_saying_why(settings: Settings, make, says: str) -> None:
    async with servers(settings, "router") as addresses:
        bad = make(jwt_secret(settings))
        error = await raw_call(addresses["router"], (("authorization", f"Bearer {bad}"),))
        assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert says in error.details()
        good = mint(jwt_secret(settings), "sue", [SUPERVISOR])
        assert await raw_call(addresses["router"], (("authorization", f"Bearer {good}"),)) is None


async def test_health_needs_no_token_and_reflection_is_off_unless_enabled(settings: Settings) -> None:
    async with servers(settings, "router") as addresses, grpc.aio.insecure_channel(addresses["router"]) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as off:
            async for _ in reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            ):
                pass
        assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED
    enabled = settings.model_copy(update={"grpc_reflection": True})
    async with servers(enabled, "router") as addresses, grpc.aio.insecure_channel(addresses["router"]) as ch:
        names = []
        async for response in reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        ):
            names = [s.name for s in response.list_services_response.service]
        assert "parley.v1.RouterService" in names


async def test_auth_disabled_takes_an_explicit_setting_and_warns(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    off = settings.model_copy(update={"auth_disabled": True})
    with caplog.at_level(logging.WARNING, logger="parley.auth"):
        async with servers(off, "router") as addresses:
            assert await raw_call(addresses["router"]) is None
    assert "authentication is OFF" in caplog.text


def rsa_jwk(kid: str) -> tuple[rsa.RSAPrivateKey, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, public | {"kid": kid, "use": "sig", "alg": "RS256"}


def provider_token(key: object, kid: str, alg: str, **overrides: object) -> str:
    body = claims(**({"iss": "https://idp.example"} | overrides))
    return jwt.encode(body, key, alg, headers={"kid": kid})


async def test_identity_provider_tokens_from_a_jwks_file(settings: Settings, tmp_path: Path) -> None:
    key, public = rsa_jwk("k1")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public]}))
    idp = settings.model_copy(update={"auth_jwks": str(jwks), "auth_jwks_issuer": "https://idp.example"})
    async with servers(idp, "router") as addresses:
        router = addresses["router"]
        assert (await call(idp, router, LIST_QUEUES, None, provider_token(key, "k1", "RS256")))[0] == (
            grpc.StatusCode.OK
        )
        code, details = await call(
            idp, router, LIST_QUEUES, None, provider_token(key, "k1", "RS256", iss="x")
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED and "issuer" in details
        other, _ = rsa_jwk("k1")
        code, details = await call(idp, router, LIST_QUEUES, None, provider_token(other, "k1", "RS256"))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "Signature verification" in details
        # `internal` belongs to the services: an identity provider cannot grant it.
        code, details = await call(
            idp, router, ROUTE, None, provider_token(key, "k1", "RS256", scope=INTERNAL)
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED and "needs scope internal" in details


async def test_identity_provider_tokens_from_a_jwks_url(settings: Settings) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "e1", "alg": "ES256"}
    app_ = web.Application()

    async def serve_jwks(request: web.Request) -> web.Response:
        return web.json_response({"keys": [public]})

    app_.router.add_get("/jwks", serve_jwks)
    runner = web.AppRunner(app_)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/jwks"
    idp = settings.model_copy(update={"auth_jwks": url, "auth_jwks_issuer": "https://idp.example"})
    try:
        async with servers(idp, "router") as addresses:
            good = provider_token(key, "e1", "ES256")
            assert (await call(idp, addresses["router"], LIST_QUEUES, None, good))[0] == grpc.StatusCode.OK
            wrong_audience = provider_token(key, "e1", "ES256", aud="other")
            code, details = await call(idp, addresses["router"], LIST_QUEUES, None, wrong_audience)
            assert code == grpc.StatusCode.UNAUTHENTICATED and "Audience" in details
    finally:
        await runner.cleanup()


def certificate(
    subject: str, key: object, issuer: x509.Name | None = None, signer: object = None, ca: bool = False
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(signer or key, hashes.SHA256())  # type: ignore[arg-type]


def write_pki(folder: Path) -> dict[str, Path]:
    """A CA, and a certificate for 127.0.0.1 signed by it (the services' server and client identity)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("parley-test-ca", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate("parley-service", key, issuer=ca.subject, signer=ca_key)
    pem = serialization.Encoding.PEM
    files = {"ca": folder / "ca.pem", "cert": folder / "svc.pem", "key": folder / "svc.key"}
    files["ca"].write_bytes(ca.public_bytes(pem))
    files["cert"].write_bytes(cert.public_bytes(pem))
    files["key"].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


async def test_tls_and_mtls(settings: Settings, tmp_path: Path) -> None:
    pki = write_pki(tmp_path)
    tls = settings.model_copy(
        update={"tls_cert_file": pki["cert"], "tls_key_file": pki["key"], "tls_ca_file": pki["ca"]}
    )
    supervisor = token(settings, "sue", SUPERVISOR)
    async with servers(tls, "router") as addresses:
        router = addresses["router"]
        await rpc.wait_ready(router, 5, tls)
        assert (await call(tls, router, LIST_QUEUES, None, supervisor))[0] == grpc.StatusCode.OK
        # A plaintext client gets nowhere.
        code, _ = await call(settings, router, LIST_QUEUES, None, supervisor, timeout=2)
        assert code == grpc.StatusCode.UNAVAILABLE
    mutual = tls.model_copy(update={"tls_require_client_cert": True})
    async with servers(mutual, "router") as addresses:
        router = addresses["router"]
        assert (await call(mutual, router, LIST_QUEUES, None, supervisor))[0] == grpc.StatusCode.OK
        # Server TLS alone (no client certificate) is refused by an mTLS server.
        code, _ = await call(tls, router, LIST_QUEUES, None, supervisor, timeout=2)
        assert code == grpc.StatusCode.UNAVAILABLE


def test_parley_token_prints_a_verifiable_token(tmp_path: Path) -> None:
    secret = "s" * 40
    env = {"PARLEY_AUTH_JWT_SECRET": secret, "PARLEY_AUTH_JWT_SECRET_FILE": str(tmp_path / "none")}
    result = CliRunner().invoke(
        app, ["token", "--subject", "ana", "--scope", "agent,supervisor", "--ttl", "120"], env=env
    )
    assert result.exit_code == 0, result.output
    body = jwt.decode(result.output.strip(), secret, algorithms=["HS256"], audience="parley")
    assert body["sub"] == "ana" and body["scope"] == "agent supervisor" and body["exp"] - body["iat"] == 120
    refused = CliRunner().invoke(app, ["token", "--subject", "x", "--scope", "internal"], env=env)
    assert refused.exit_code != 0 and "reserved" in refused.output
    no_secret = CliRunner().invoke(
        app, ["token", "--subject", "x", "--scope", "agent"], env=env | {"PARLEY_AUTH_JWT_SECRET": ""}
    )
    assert no_secret.exit_code == 1


def test_local_secret_is_created_once_private(tmp_path: Path) -> None:
    path = tmp_path / ".parley" / "jwt_secret"
    secret = ensure_local_secret(path)
    assert len(secret) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_local_secret(path) == secret
    assert jwt_secret(Settings(auth_jwt_secret_file=path)) == secret


async def test_services_sign_their_own_internal_tokens(settings: Settings) -> None:
    own = settings.model_copy(update={"auth_token": "", "worker_name": "worker-7"})
    principal = await Verifier(own).verify(TokenSource(own)())
    assert principal.subject == "parley-worker-7" and principal.scopes == {INTERNAL}
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Verifier(settings.model_copy(update={"auth_jwt_secret": "short"}))


async def test_people_state_changes_are_audited_and_listed_for_supervisors(
    settings: Settings, redis: Redis
) -> None:
    ana, bo = f"ana-{uuid.uuid4().hex[:4]}", f"bo-{uuid.uuid4().hex[:4]}"
    async with servers(settings, "router", "conversations") as addresses:
        router, conversations = addresses["router"], addresses["conversations"]
        await assign(settings, router, ana, "c-ana")
        await assign(settings, router, bo, "c-bo")
        agent = token(settings, ana, AGENT)
        mine = router_pb2.ResolveRequest(conversation_id="c-ana", agent_id=ana)
        assert (await call(settings, router, RESOLVE, mine, agent))[0] == grpc.StatusCode.OK
        theirs = router_pb2.ResolveRequest(conversation_id="c-bo")
        assert (await call(settings, router, RESOLVE, theirs, agent))[0] == grpc.StatusCode.PERMISSION_DENIED
        unknown = router_pb2.ResolveRequest(conversation_id="c-unknown")
        supervisor = token(settings, "sue", SUPERVISOR)
        assert (await call(settings, router, RESOLVE, unknown, supervisor))[0] == grpc.StatusCode.NOT_FOUND
        # Reads and the services' own calls are not audited.
        assert (await call(settings, router, LIST_QUEUES, None, token(settings, "sue", SUPERVISOR)))[0] == (
            grpc.StatusCode.OK
        )

        listed = await list_audit(
            settings, conversations, supervisor, conversations_pb2.ListAuditRecordsRequest()
        )
        by_ana = [r for r in listed.records if r.subject == ana]
        assert [(r.method, r.outcome, r.scope) for r in by_ana] == [
            (RESOLVE, "PERMISSION_DENIED", "agent"),
            (RESOLVE, "OK", "agent"),
        ]
        assert "conversation_id=c-ana" in by_ana[1].targets and "conversation_id=c-bo" in by_ana[0].targets
        assert by_ana[1].at.seconds > 0
        # The setup's SetPresence calls were made with an admin token: audited too.
        assert [(r.outcome, r.scope) for r in listed.records if r.subject == "sue"] == [
            ("NOT_FOUND", SUPERVISOR)
        ]
        assert {r.subject for r in listed.records} == {ana, "setup", "sue"}
        assert all(r.method != ROUTE and r.method != LIST_QUEUES for r in listed.records)

        first = await list_audit(
            settings, conversations, supervisor, conversations_pb2.ListAuditRecordsRequest(page_size=1)
        )
        rest = await list_audit(
            settings,
            conversations,
            supervisor,
            conversations_pb2.ListAuditRecordsRequest(page_size=10, page_token=first.next_page_token),
        )
        assert list(first.records) + list(rest.records) == list(listed.records)
        only = await list_audit(
            settings, conversations, supervisor, conversations_pb2.ListAuditRecordsRequest(subject=ana)
        )
        assert list(only.records) == by_ana


async def list_audit(
    settings: Settings, address: str, bearer: str, request: conversations_pb2.ListAuditRecordsRequest
) -> conversations_pb2.ListAuditRecordsResponse:
    async with rpc.channel(settings, address, token=bearer) as ch:
        stub = conversations_pb2_grpc.ConversationsServiceStub(ch)
        return await stub.ListAuditRecords(request, timeout=5)


async def test_audit_trail_is_trimmed_to_its_setting(redis: Redis, keys: Keys) -> None:
    trail = AuditTrail(redis, keys, maxlen=10)
    who = type("P", (), {"subject": "sue"})()
    for _ in range(600):
        await trail.record(who, SUPERVISOR, RESOLVE, router_pb2.ResolveRequest(conversation_id="c"), "OK")
    # Trimmed as written, by whole stream nodes (100 entries each) at most past the cap.
    assert await redis.xlen(trail.key) <= 10 + 100


async def test_a_remembered_token_is_refused_once_it_expires(settings: Settings) -> None:
    verifier = Verifier(settings)
    expired = jwt.encode(claims(exp=int(time.time()) - 5), jwt_secret(settings), "HS256")
    # As if it had been verified while still valid.
    verifier.verified[expired] = Principal("sue", frozenset({SUPERVISOR}), time.time() - 5)
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(expired)
    fresh = mint(jwt_secret(settings), "sue", [SUPERVISOR])
    assert (await verifier.verify(fresh)).subject == "sue" and fresh in verifier.verified


def test_a_service_will_not_start_with_auth_on_and_no_secret(tmp_path: Path, redis_url: str) -> None:
    env = {
        "REDIS_URL": redis_url,
        "PARLEY_AUTH_JWT_SECRET": "",
        "PARLEY_AUTH_JWT_SECRET_FILE": str(tmp_path / "none"),
        "PARLEY_ROUTER_PORT": str(free_port()),
        "PARLEY_METRICS_PORT": "0",
    }
    result = CliRunner().invoke(app, ["serve", "router"], env=env)
    assert result.exit_code == 2 and "PARLEY_AUTH_JWT_SECRET" in result.output


async def test_a_process_renews_its_own_token_before_it_expires(settings: Settings) -> None:
    source = TokenSource(settings.model_copy(update={"auth_token": ""}))
    first = source()
    assert source() == first  # reused while valid
    source._expires = time.time() + 10  # as if minted an hour ago
    renewed = source()
    assert source._expires > time.time() + 3000  # minted anew, valid for another hour
    assert (await Verifier(settings).verify(renewed)).scopes == {INTERNAL}


async def test_a_process_mints_its_own_token_with_the_scopes_it_asks_for(settings: Settings) -> None:
    """Without PARLEY_AUTH_TOKEN, services call as `internal` and the console as a supervisor: an internal
    token may not read the floor, a supervisor one may."""
    own = settings.model_copy(update={"auth_token": SecretStr("")})
    async with servers(settings, "router") as addresses:
        async with rpc.channel(own, addresses["router"]) as internal:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await router_pb2_grpc.RouterServiceStub(internal).ListQueues(router_pb2.ListQueuesRequest())
        async with rpc.channel(own, addresses["router"], scopes=(SUPERVISOR,)) as supervisor:
            await router_pb2_grpc.RouterServiceStub(supervisor).ListQueues(router_pb2.ListQueuesRequest())
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
