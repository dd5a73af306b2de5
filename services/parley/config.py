"""The one settings object of the suite, read from environment variables.

Every service reads its ports, peers and limits from here; `PARLEY_` is the prefix for all but `REDIS_URL`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

SERVICES = ("ingestion", "conversations", "classifier", "router", "dispatch")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PARLEY_", extra="ignore", frozen=True, populate_by_name=True
    )

    # Redis or Valkey holding all state and the inbound log; unset starts an embedded Valkey. For a cluster,
    # several nodes' URLs may be given comma-separated: any one that answers is enough to start.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "PARLEY_REDIS_URL")
    )
    # Talk to a Redis Cluster (every key of one conversation shares a hash tag, so the same code runs there).
    redis_cluster: bool = False
    # On a Redis Cluster, how long a call that changes state waits, before it answers, for a replica of each
    # master to confirm the writes so far (WAIT): a failover then loses none of what was answered. A master
    # with no live replica (none, one syncing, one silent for 2 s) is logged and the call answers anyway; one
    # whose live replica is only slow waits up to 10 times more, then answers UNAVAILABLE to be retried (0:
    # never wait; for clusters without replicas, which would otherwise wait this long on every call).
    redis_replica_wait_ms: int = Field(default=100, ge=0, le=10_000)
    # Where the embedded Valkey keeps its append-only file; empty keeps nothing on disk.
    embedded_data_dir: str = ""
    # A namespace prefix for every key, so several suites (or test runs) can share one Redis.
    key_prefix: str = "parley"

    # The interface every service binds ("0.0.0.0" in containers), each service's gRPC port, and the HTTP port
    # of the ingestion service's webhooks.
    host: str = "127.0.0.1"
    ingestion_port: int = 50051
    conversations_port: int = 50052
    classifier_port: int = 50053
    router_port: int = 50054
    dispatch_port: int = 50055
    webhook_port: int = 8080
    # Each process serves Prometheus `/metrics` on this port plus its offset (ingestion +0, conversations +1,
    # classifier +2, router +3, dispatch +4, worker +5 + worker_index); 0 serves none.
    metrics_port: int = 9101
    # Which of several workers on one host this is (`parley up` numbers its workers), for its metrics port.
    worker_index: int = 0
    # The process that started this one (`parley up`, bench, chaos set it); when it is gone, this one stops
    # as on SIGTERM. 0: none.
    supervisor_pid: int = 0
    # Log lines: "text" for people, "json" (one object per line, with trace and message ids) for collectors.
    log_format: Literal["text", "json"] = "text"
    # The supervisor console (HTTP) and how many recent conversations its traffic page reads in full.
    console_port: int = 8090
    console_traffic_sample: int = Field(default=200, ge=1, le=500)

    # Peer addresses: host:port, or a gRPC target naming several replicas (ipv4:10.0.0.5:1,10.0.0.6:1), which
    # calls take turns over; empty means host plus the peer's port.
    ingestion_addr: str = ""
    conversations_addr: str = ""
    classifier_addr: str = ""
    router_addr: str = ""
    dispatch_addr: str = ""

    # Limits on what a caller may send.
    max_message_bytes: int = 4 * 1024 * 1024
    max_batch: int = 1000
    max_text_chars: int = 10_000
    max_id_chars: int = 256
    # Attachments per message, and the longest attachment field (a URL, a type, a platform id).
    max_attachments: int = 50
    max_attachment_chars: int = 2048

    # Deadline on every outbound call, and the grace period on shutdown.
    rpc_timeout_seconds: float = 10.0
    shutdown_grace_seconds: float = 5.0

    # The durable inbound log: a fixed number of stream partitions, read by a consumer group.
    stream_partitions: int = 8
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    worker_batch: int = 256
    worker_block_ms: int = 200
    # A pending entry idle this long belongs to a worker presumed dead and is re-claimed.
    claim_idle_ms: int = 30_000
    # This worker's consumer name in the group (default: host name and process id).
    worker_name: str = ""
    # Entries kept in the event stream over all its partitions (older ones are trimmed).
    events_maxlen: int = 1_000_000
    # The event stream's partitions (an event's is a hash of its conversation id, else its message id);
    # each is a key of its own, spread over the slots of a cluster. Changing it re-partitions new events only.
    event_partitions: int = Field(default=12, ge=1, le=1024)
    # The conversation listing indexes' partitions (by conversation id; each a key of its own, spread over
    # the slots of a cluster): a listing reads them all. Changing it needs the indexes rebuilt.
    index_partitions: int = Field(default=12, ge=1, le=1024)
    # Every dead-letter list (inbound, dispatch) keeps its newest entries up to this many.
    dead_letter_maxlen: int = 10_000
    # Backpressure: with this many entries in the inbound log not yet processed, Ingest answers
    # RESOURCE_EXHAUSTED and the webhooks 429, each with a hint to retry after so many seconds (0: no bound).
    inbound_max_backlog: int = 250_000
    inbound_retry_after_seconds: int = 5
    # Server streams (WatchEvents, WatchAssignments): at most this many open per server and per token
    # subject (the next is refused with RESOURCE_EXHAUSTED); an idle watcher polls Redis this often rather
    # than holding a pooled connection in a blocking read (a WatchEvents that keeps finding events reads
    # again within milliseconds).
    stream_max: int = Field(default=256, ge=1)
    stream_max_per_caller: int = Field(default=16, ge=1)
    stream_poll_seconds: float = Field(default=0.1, gt=0)

    # The classifier's trained artifacts and knowledge base.
    models_dir: Path = REPO_ROOT / "models"
    # Urgent review: the model's urgent probability at or above which a message is flagged for review (unset:
    # the operating point chosen by `parley train`, in metrics.json), and the file of review cues (unset:
    # urgent_review.yaml in models_dir).
    urgent_review_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    urgent_review_file: Path | None = None
    # The bot's knowledge base: a brand's CSV (intent,question,answer[,topic,channels]) or YAML (unset:
    # knowledge_base.yaml in models_dir). Edits are picked up without a restart. The confidence at or above
    # which the bot answers (unset: the file's own threshold, else the default of its retrieval).
    knowledge_base: Path | None = None
    bot_min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    # The router's escalation policy (YAML, reloaded when the file changes; see docs/policy.md); unset: the
    # shipped default.
    policy_file: Path | None = None

    # dispatch: outbox partitions (fixed once replies are queued: a reply's partition is a hash of its id),
    # retries with exponential backoff and full jitter, and the adapter per channel name ("x", "whatsapp").
    dispatch_partitions: int = 4
    dispatch_max_attempts: int = 5
    dispatch_backoff_base_seconds: float = 1.0
    dispatch_backoff_cap_seconds: float = 300.0
    dispatch_concurrency: int = 32
    # How long a finished delivery (and so its reply_id's idempotency) is kept.
    dispatch_retention_seconds: int = 30 * 24 * 3600
    # The adapter per channel name (JSON, e.g. {"x":"x","whatsapp":"whatsapp","messenger":"meta"}) and for
    # every other channel: "log" writes one JSON line per post to dispatch_log_path, "network" calls the
    # network's real API.
    dispatch_adapters: dict[str, str] = Field(default_factory=dict)
    dispatch_default_adapter: str = "log"
    dispatch_log_path: Path = Path(".parley/outbox.log")

    # dispatch, the networks: API base URLs (a proxy or a test server may stand in) and credentials. The page,
    # Instagram account and phone number ids below are used when a reply carries no brand_account_id.
    dispatch_x_base_url: str = "https://api.x.com"
    dispatch_x_bearer_token: SecretStr = SecretStr("")  # OAuth 2.0 user-context token: tweet.write, dm.write
    dispatch_graph_base_url: str = "https://graph.facebook.com"
    dispatch_graph_version: str = "v21.0"
    dispatch_facebook_page_id: str = ""
    dispatch_facebook_page_token: SecretStr = SecretStr("")
    dispatch_instagram_account_id: str = ""
    dispatch_instagram_token: SecretStr = SecretStr("")
    dispatch_whatsapp_phone_number_id: str = ""
    dispatch_whatsapp_token: SecretStr = SecretStr("")
    # Per request; must stay below claim_idle_ms so a slow call never overlaps another loop's takeover.
    dispatch_http_timeout_seconds: float = 10.0
    # Requests in flight per network adapter.
    dispatch_network_concurrency: int = 8
    # Outside the 24-hour window: an approved WhatsApp template (its one body parameter takes the reply
    # text) and a Messenger/Instagram message tag (e.g. HUMAN_AGENT); empty means such a reply is BLOCKED.
    dispatch_whatsapp_template: str = ""
    dispatch_whatsapp_template_language: str = "en_US"
    dispatch_messenger_message_tag: str = ""
    dispatch_window_hours: float = 24.0
    # A public reply naming an email, phone, card, order or account number or address: "block" or "move"
    # (a short public invitation to a DM, and the detail sent privately as "<reply_id>/private").
    dispatch_public_pii_policy: str = "move"
    # Regions (ISO 3166 codes) whose national phone formats the guard reads; international (+...) numbers are
    # read whatever the region.
    dispatch_pii_phone_regions: str = "US,GB,FR,DE"
    dispatch_move_to_private_text: str = (
        "We'd rather not share those details here: we've sent you a direct message."
    )
    # A part whose call started but whose outcome was never recorded (a crash in between) may be posted:
    # "dead_letter" never risks a duplicate, "repost" never risks a gap.
    dispatch_unconfirmed_part_policy: str = "dead_letter"

    # ingestion webhooks: the networks' signed HTTP deliveries on webhook_port (an ingestion server started on
    # an ephemeral gRPC port takes an ephemeral webhook port too). A network whose secret is empty is refused
    # with 503, never read unsigned.
    webhook_enabled: bool = True
    webhook_max_body_bytes: int = 1024 * 1024
    # A connection whose request headers have not all arrived this long after it opened (or after its
    # previous answer) is closed; a body not read whole in its timeout gets 408. At most
    # webhook_max_connections are open at once (the next one gets 503), so partial bodies never hold more
    # than that many times the body cap.
    webhook_header_timeout_seconds: float = 10.0
    webhook_body_timeout_seconds: float = 30.0
    webhook_max_connections: int = 64
    webhook_meta_app_secret: SecretStr = SecretStr("")
    webhook_meta_verify_token: SecretStr = SecretStr("")
    # Messenger and Instagram echo every message the Page sends; those sent by this app id are Parley's own
    # replies (dispatch records them), so they are skipped. Echoes from other senders (the Page inbox) are
    # logged as the brand's outbound messages.
    webhook_meta_app_id: str = ""
    # X's consumer secret: answers the CRC challenge and checks x-twitter-webhooks-signature.
    webhook_x_consumer_secret: SecretStr = SecretStr("")
    # Messages of a signed delivery that Parley's validation refuses are kept here (newest last), not dropped.
    webhook_refused_maxlen: int = 10_000

    # conversations: a reply whose parent is missing is held this long, then opens its own conversation; a
    # customer message this soon after resolution reopens the conversation (later, a new linked one); a DM
    # this soon after the customer's (or brand's) last public message joins that open conversation.
    conversations_held_timeout_seconds: float = 600.0
    conversations_sweep_seconds: float = 5.0
    conversations_reopen_window_seconds: float = 7 * 24 * 3600.0
    conversations_private_window_seconds: float = 24 * 3600.0
    # A closed (resolved or closed-without-action) conversation and its messages expire this long after
    # closing; reopening it clears the expiry. 0 keeps them forever.
    conversations_retention_seconds: int = 90 * 24 * 3600
    # Customer value tiers: a YAML/JSON file mapping "channel:author_id" (or author_id) to a tier, then
    # follower-count thresholds ("tier:min_followers,..."), else the default tier.
    conversations_tier_file: Path | None = None
    conversations_tier_thresholds: str = "vip:100000,influencer:10000"
    conversations_default_tier: str = "standard"

    # router: seconds between steps of the background loop (presence grace, SLA escalation, ageing, backlog
    # draining, claim recovery, policy reload).
    router_tick_seconds: float = 1.0
    # router: waiting conversations each team's queue rescores per tick for ageing, oldest first; a longer
    # queue is rescored a slice per tick, so a flood's backlog never blocks Redis for the whole of it.
    router_ageing_batch: int = Field(default=2000, ge=1)

    # Authentication (see README, Security). Tokens signed with this secret (HS256) are Parley's own: the
    # services' internal tokens and those `parley token` prints. Empty: read auth_jwt_secret_file if present.
    auth_jwt_secret: SecretStr = SecretStr("")
    auth_jwt_secret_file: Path = Path(".parley/jwt_secret")
    # A contact center's identity provider: its JWKS (file path or https URL) for RS256/ES256 tokens, whose
    # issuer and audience must match.
    auth_jwks: str = ""
    auth_jwks_issuer: str = ""
    auth_audience: str = "parley"
    # This process's own bearer token for its client calls; empty mints an `internal` one from the secret.
    auth_token: SecretStr = SecretStr("")
    # Off only when explicitly set (a warning is logged at start): every call is then allowed.
    auth_disabled: bool = False
    # gRPC server reflection, unauthenticated when on (it reveals the API, never data).
    grpc_reflection: bool = False
    # TLS: the server's certificate and key (also the client certificate under mTLS), the CA that signed
    # the peers' certificates, and whether servers require a client certificate (mTLS).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_require_client_cert: bool = False
    # The audit trail of state-changing calls by agents, supervisors and admins: entries kept (approximate).
    audit_maxlen: int = 100_000

    def address(self, service: str) -> str:
        """The address a peer uses to reach `service`."""
        explicit = getattr(self, f"{service}_addr")
        return explicit or f"{self.host}:{self.port(service)}"

    def port(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def metrics_port_of(self, process: str, worker_index: int | None = None) -> int:
        """The `/metrics` port of a service or of the worker (0 when metrics are off)."""
        if not self.metrics_port:
            return 0
        if process == "worker":
            index = self.worker_index if worker_index is None else worker_index
            return self.metrics_port + len(SERVICES) + index
        return self.metrics_port + SERVICES.index(process)

    @property
    def grpc_options(self) -> list[tuple[str, int]]:
        """Channel and server options: message size caps and keepalive."""
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]


def reveal(value: SecretStr | str) -> str:
    """A secret setting's text, read where it is used (a plain str too, as `model_copy` leaves an update
    unvalidated)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value
