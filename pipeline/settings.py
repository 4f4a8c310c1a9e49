"""The one settings object: every knob is a `JOURNEYS_` environment variable.

`load_settings()` is the only way the CLI and the worker read configuration, so an invalid
value fails at start with a message that names the variable, not deep inside a client.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "JOURNEYS_"
_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # --- local state -------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".journeys"),
        description="Where embedded state lives: chdb data, the local broker, its jar cache.",
    )

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Comma-separated host:port list. When unset: the local broker's address "
        "when it runs, else 127.0.0.1 at JOURNEYS_KAFKA_LOCAL_PORT.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism; required with a SASL_* protocol."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle to verify the brokers' TLS certificates."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate for mutual TLS."
    )
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Client certificate's key.")
    kafka_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How long a command (emit, simulate) tries to reach Kafka before it gives "
        "up and names the address it tried.",
    )
    kafka_max_message_bytes: int = Field(
        default=1_048_576,
        ge=65_536,
        le=1 << 30,
        description="Largest message the worker sends, headers included: at most the "
        "producer's max.request.size and the dead-letter topic's max.message.bytes (Kafka's "
        "defaults: 1048576 and 1048588). A dead letter that would be larger is sent with its "
        "payload cut to fit, and the whole payload's size and sha256 in headers.",
    )
    kafka_local_port: int = Field(
        default=9092,
        ge=1,
        le=65535,
        description="Preferred port of the local broker; a free one is used when it is taken.",
    )
    kafka_local_heap: str = Field(
        default="512m", pattern=r"^[0-9]+[mMgG]$", description="Java heap of the local broker."
    )

    # --- topics ------------------------------------------------------------------------
    topic_touchpoints: str = Field(
        default="touchpoints", pattern=_TOPIC, description="Touchpoint events in."
    )
    topic_dead_letters: str = Field(
        default="touchpoints.dlq", pattern=_TOPIC, description="Rejected events, raw + reason."
    )
    topic_scores: str = Field(
        default="journeys.scores", pattern=_TOPIC, description="Journey score snapshots out."
    )
    topic_alerts: str = Field(
        default="journeys.alerts", pattern=_TOPIC, description="Alerts to departments out."
    )
    topic_alert_dead_letters: str = Field(
        default="journeys.alerts.dlq",
        pattern=_TOPIC,
        description="Alerts whose webhook delivery failed after the last attempt, with the reason.",
    )
    topic_partitions: int = Field(
        default=4, ge=1, le=1024, description="Partitions of the topics the worker creates."
    )
    topic_routed: str = Field(
        default="touchpoints.routed",
        pattern=_TOPIC,
        description="Worker-internal: events re-keyed to their journey key, and idle clock ticks.",
    )
    topic_retention_days: float = Field(
        default=30, gt=0, description="Retention of the topics the worker creates, in days."
    )
    topic_erasures: str = Field(
        default="journeys.erasures",
        pattern=_TOPIC,
        description="Erasure requests from `journeys erase` to the worker, and its replies.",
    )
    erasure_topic_retention_hours: float = Field(
        default=24,
        gt=0,
        description="Retention of the erasures topic: its requests name customers in clear.",
    )

    # --- erasure (docs/operations.md#erasing-a-customer) ---------------------------------
    erasure_salt: SecretStr | None = Field(
        default=None,
        description="Secret key of the erasure ledger's customer hashes (at least 16 "
        "characters; keep it as long as the ledger). `journeys erase` refuses to run without.",
    )
    retention_days_events: int = Field(
        default=0,
        ge=0,
        le=36_500,
        description="Days touchpoints, dead letters and rejection examples are kept in "
        "ClickHouse (TTL on event time; set by `journeys migrate` and the worker's start); 0: "
        "until erased. At least JOURNEYS_TOPIC_RETENTION_DAYS.",
    )
    retention_days_journeys: int = Field(
        default=0,
        ge=0,
        le=36_500,
        description="Days journeys and signals are kept after their last event (TTL); 0: "
        "until erased. At least JOURNEYS_TOPIC_RETENTION_DAYS.",
    )
    erasure_wait_seconds: float = Field(
        default=60,
        gt=0,
        description="How long `journeys erase` waits for a running worker to report an erasure.",
    )

    # --- event contract (pipeline.contract.Validator.from_settings) ----------------------
    contract_max_bytes: int = Field(
        default=65_536, ge=1, description="Largest touchpoint message accepted (too_large above)."
    )
    contract_future_tolerance_seconds: float = Field(
        default=300,
        ge=0,
        le=366 * 86_400,  # beyond a year is no clock skew, and a far one overflows datetime
        description="How far occurred_at may be ahead of the clock (skew).",
    )
    contract_earliest_occurred_at: datetime = Field(
        default=datetime(1900, 1, 1, tzinfo=UTC),
        description="Earliest occurred_at accepted (early_timestamp before), with its offset. "
        "Backfills of old history go back this far.",
    )

    # --- stream worker (journeys run) ----------------------------------------------------
    worker_id: str = Field(
        default="journeys",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="Faust app id: the consumer group and the prefix of its internal topics.",
    )
    worker_store: Literal["rocksdb", "memory"] = Field(
        default="rocksdb", description="Journey state store: rocksdb (under data_dir) or memory."
    )
    worker_rocksdb_memory_mb: int = Field(
        default=128,
        ge=8,
        le=1_048_576,
        description="RocksDB memory of the worker's state store, in MiB, split evenly across "
        "the topic_partitions databases: half block cache, half write buffers (two each).",
    )
    worker_book_cache: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description="Journey books kept decoded in memory after they are written (about 6 KB "
        "each): a journey's next event then skips reading and decoding its state.",
    )
    worker_web_port: int = Field(
        default=6066,
        ge=1,
        le=65535,
        description="Port of the worker's web server: /healthz, /readyz, /metrics, the "
        "context API (/v1/journeys).",
    )
    worker_web_host: str = Field(
        default="127.0.0.1",
        description="Address the worker's web server listens on (0.0.0.0 in a container).",
    )
    worker_web_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/\s]+$",
        description="URL other workers of the group reach this worker's web server at, "
        "e.g. http://worker-1:6066 (they forward context API requests to a journey's "
        "owner); unset: http://WORKER_WEB_HOST:WORKER_WEB_PORT (the host's name for 0.0.0.0).",
    )
    context_tokens: SecretStr | None = Field(
        default=None,
        description="Read-only bearer tokens of the worker's context API (/v1/journeys), as "
        "a JSON object mapping each token to the departments reading with it, e.g. "
        '{"s3cr3t-field": ["maintenance"]}; unset: the API answers 503.',
    )
    context_tokens_file: Path | None = Field(
        default=None,
        description="A file holding the context API's tokens in the same JSON format "
        "(instead of JOURNEYS_CONTEXT_TOKENS).",
    )
    worker_ready_max_lag: int = Field(
        default=100_000,
        ge=0,
        description="/readyz fails when the worker's partitions are more messages behind.",
    )
    worker_ready_flush_age_seconds: float = Field(
        default=60.0,
        gt=0,
        description="/readyz fails when buffered rows have had no successful flush this long.",
    )
    worker_session_timeout_seconds: float = Field(
        default=30.0,
        ge=6,
        le=300,
        description="How long a silent worker keeps its partitions before the group moves them.",
    )
    worker_health_sample_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="How often the worker writes lag and sink retries to pipeline_metrics.",
    )
    worker_batch_size: int = Field(
        default=5000, ge=1, description="Messages the worker takes from Kafka at most at once."
    )
    worker_processing_attempts: int = Field(
        default=2,
        ge=1,
        le=10,
        description="A message whose processing raises this many times (a bug, not bad input; "
        "the first time in its batch, then alone) is dead-lettered as processing_error. Each "
        "time, the worker reads its input again from the last checkpoint.",
    )
    worker_stop_seconds: float = Field(
        default=8.0,
        gt=0,
        le=300,
        description="A stop stores and commits what was taken within this time, then exits; "
        "what is left is replayed at start (keep it below the supervisor's grace period).",
    )
    sink_flush_rows: int = Field(
        default=50_000, ge=1, description="ClickHouse rows buffered before a flush is started."
    )
    # 0.5 s: at 5,000 events/s an event waits for the next checkpoint, then for that
    # checkpoint (0.5-0.9 s); at 1.0 s the wait alone was up to a second (p99 1.99 and 2.00
    # s against 1.61 and 1.75 s, benchmarks/notes.md). Under a backlog checkpoints run back
    # to back whatever the interval, so throughput does not depend on it.
    sink_flush_seconds: float = Field(
        default=0.5, gt=0, description="Longest time rows wait in the buffer before a flush."
    )
    sink_buffer_rows: int = Field(
        default=500_000,
        ge=1,
        description="Buffered rows at which the worker stops consuming until a flush succeeds.",
    )
    sink_retry_max_seconds: float = Field(
        default=30.0, gt=0, description="Longest back-off between retries of a failed write."
    )
    dedup_window_hours: float = Field(
        default=24, gt=0, description="Event time a seen event_id is remembered for de-dup."
    )
    dedup_max_ids: int = Field(
        default=1_000_000, ge=1, description="Most event_ids remembered per worker for de-dup."
    )
    clock_idle_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A caught-up partition idle this long gets a wall-clock tick (live mode).",
    )
    alert_horizon_hours: float = Field(
        default=24, ge=0, description="Alert when an open promise falls due within this time."
    )
    alert_act_within_hours: float = Field(
        default=24,
        gt=0,
        description="Time a department has to act on an alert (a promise due soon: until it "
        "falls due); the loop-closure figures count an action after it as late.",
    )
    score_model_path: Path | None = Field(
        default=None, description="Score model TOML; the built-in v1 model when unset."
    )

    # --- HTTP collector (journeys collect) -----------------------------------------------
    collector_host: str = Field(
        default="127.0.0.1",
        description="Address the HTTP collector listens on (0.0.0.0 in a container).",
    )
    collector_port: int = Field(
        default=8080, ge=1, le=65535, description="Port of the HTTP collector."
    )
    collector_tokens: SecretStr | None = Field(
        default=None,
        description="Bearer tokens of the collector, as a JSON object mapping each token to the "
        'departments it may emit for, e.g. {"s3cr3t-billing": ["billing"]}; ["*"] for all.',
    )
    collector_tokens_file: Path | None = Field(
        default=None,
        description="A file holding the collector's tokens in the same JSON format (instead "
        "of JOURNEYS_COLLECTOR_TOKENS).",
    )
    collector_max_body_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        le=1 << 30,
        description="Largest request body the collector reads (413 above).",
    )
    collector_max_events: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Most events in one request (413 above)."
    )
    collector_rate_events_per_second: float = Field(
        default=10_000,
        gt=0,
        description="Events per second each token may send, on average (429 above).",
    )
    collector_rate_burst_events: int = Field(
        default=50_000,
        ge=1,
        description="Events a token may send at once after a quiet spell (the rate limit's "
        "bucket); at least JOURNEYS_COLLECTOR_MAX_EVENTS.",
    )
    collector_ack_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long a request waits for Kafka's acknowledgement before the collector "
        "answers 503 (keep it below the departments' HTTP timeouts).",
    )
    collector_max_pending_events: int = Field(
        default=200_000,
        ge=1,
        description="Events waiting for Kafka's acknowledgement at which the collector answers "
        "503 to further requests until Kafka catches up.",
    )

    # --- alert webhooks (journeys alerts deliver) -----------------------------------------
    alert_webhooks: SecretStr | None = Field(
        default=None,
        description="Each department's alert webhook, as a JSON object mapping the department "
        'to its URL and signing secret, e.g. {"billing": {"url": "https://billing.example/'
        'hooks/journeys", "secret": "s3cr3t"}}.',
    )
    alert_webhooks_file: Path | None = Field(
        default=None,
        description="A file holding the alert webhooks in the same JSON format (instead of "
        "JOURNEYS_ALERT_WEBHOOKS).",
    )
    alert_delivery_group: str = Field(
        default="journeys-alert-delivery",
        min_length=1,
        max_length=249,
        description="Consumer group of `journeys alerts deliver` on the alerts topic.",
    )
    alert_delivery_attempts: int = Field(
        default=6,
        ge=1,
        le=30,
        description="Attempts per alert before it is dead-lettered (a 4xx answer other than "
        "408, 425 and 429 dead-letters it at once).",
    )
    alert_delivery_backoff_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="Wait before the second attempt; each later wait doubles (with jitter).",
    )
    alert_delivery_backoff_max_seconds: float = Field(
        default=60.0, gt=0, le=86_400, description="Longest wait between two attempts."
    )
    alert_delivery_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="How long one webhook request may take."
    )
    alert_delivery_concurrency: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Alerts of one department being sent at once, their retries' waits "
        "included; the next waits for one of them to be delivered or dead-lettered.",
    )
    alert_delivery_breaker_failures: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Webhook attempts in a row without an HTTP answer (refused, timed out) "
        "after which a department's receiver counts as down: then one probe request at a "
        "time goes out, at most one per JOURNEYS_ALERT_DELIVERY_BACKOFF_SECONDS, and other "
        "attempts fail at once without a connection, until a probe gets an answer; 0: never.",
    )
    alert_delivery_max_pending: int = Field(
        default=10_000,
        ge=1,
        description="Alerts taken from Kafka and not yet delivered or dead-lettered at which "
        "the delivery stops reading until some are done.",
    )
    alert_delivery_metrics_port: int = Field(
        default=6067,
        ge=0,
        le=65535,
        description="Port of the alert delivery's /metrics (Prometheus: delivered, retried and "
        "dead-lettered alerts and delivery seconds per department); 0: not served.",
    )
    alert_delivery_metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the alert delivery's /metrics listens on (0.0.0.0 in a container).",
    )

    # --- ClickHouse --------------------------------------------------------------------
    clickhouse_mode: Literal["embedded", "server"] = Field(
        default="embedded",
        description="embedded: chdb in-process under the data directory; server: ClickHouse.",
    )
    clickhouse_url: str = Field(
        default="http://localhost:8123",
        pattern=r"^https?://[^\s/]+(:[0-9]+)?/?$",
        description="HTTP(S) URL of the ClickHouse server (server mode).",
    )
    clickhouse_user: str = Field(default="default", description="ClickHouse user (server mode).")
    clickhouse_password: SecretStr = Field(
        default=SecretStr(""), description="ClickHouse password (server mode)."
    )
    clickhouse_database: str = Field(
        default="journeys",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="Database holding the journey tables.",
    )

    # --- Grafana (journeys dashboards deploy) ---------------------------------------------
    grafana_token: SecretStr | None = Field(
        default=None, description="Grafana service-account token; else user and password."
    )
    grafana_user: str | None = Field(default=None, description="Grafana user (basic auth).")
    grafana_password: SecretStr | None = Field(default=None, description="Grafana password.")
    grafana_clickhouse_host: str = Field(
        default="clickhouse", description="ClickHouse host as Grafana's datasource reaches it."
    )
    grafana_clickhouse_port: int = Field(
        default=9000, ge=1, le=65535, description="ClickHouse native-protocol port for Grafana."
    )
    grafana_clickhouse_user: str = Field(
        default="journeys_grafana", description="Read-only ClickHouse user Grafana queries as."
    )
    grafana_clickhouse_password: SecretStr = Field(
        default=SecretStr(""), description="Password of the read-only ClickHouse user."
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value

    @field_validator("contract_earliest_occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError(f"expected a time with its UTC offset, got {value.isoformat()!r}")
        return value

    @model_validator(mode="after")
    def _topics_kept_no_longer_than_tables(self) -> Settings:
        # The topics hold the same personal data as the tables: kept longer there, a replay
        # would store again what a table's TTL already expired.
        for name in ("retention_days_events", "retention_days_journeys"):
            days = getattr(self, name)
            if days and self.topic_retention_days > days:
                raise ValueError(
                    f"JOURNEYS_TOPIC_RETENTION_DAYS ({self.topic_retention_days:g}) must not "
                    f"exceed JOURNEYS_{name.upper()} ({days}): the topics would keep personal "
                    "data longer than the tables, and a replay would bring expired rows back"
                )
        return self

    @model_validator(mode="after")
    def _burst_holds_a_request(self) -> Settings:
        # A smaller bucket would answer 429 to a full-size request forever.
        if self.collector_rate_burst_events < self.collector_max_events:
            raise ValueError(
                f"JOURNEYS_COLLECTOR_RATE_BURST_EVENTS ({self.collector_rate_burst_events}) must "
                f"be at least JOURNEYS_COLLECTOR_MAX_EVENTS ({self.collector_max_events})"
            )
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                name
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                names = ", ".join(ENV_PREFIX + m.upper() for m in missing)
                raise ValueError(f"security protocol {self.kafka_security_protocol} needs {names}")
        return self

    # --- derived -----------------------------------------------------------------------
    @property
    def clickhouse_dir(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def kafka_home(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def kafka_jars_dir(self) -> Path:
        return self.data_dir / "kafka" / "lib"

    @cached_property
    def bootstrap_servers(self) -> str:
        """The broker to talk to: the configured one, else the running local broker, else
        the local broker's preferred port. The local broker moves to a free port when its
        preferred one is taken: without this, commands would send to whatever else listens
        on the default port. Found when first asked: a broker started later is seen by a
        Settings loaded later."""
        if "kafka_bootstrap_servers" in self.model_fields_set:
            return self.kafka_bootstrap_servers
        from pipeline.kafka.local import running_broker_address

        return running_broker_address(self.kafka_home) or f"127.0.0.1:{self.kafka_local_port}"

    def worker_rocksdb_options(self) -> dict[str, int]:
        """Options of each partition's RocksDB database, as Faust's RocksDBOptions takes them.

        Faust's defaults give every database its own 2 GiB block cache and up to three 64 MiB
        write buffers: with 1M journeys they held ~480 MiB and would keep growing with reads.
        Each database gets a 1/topic_partitions share of `worker_rocksdb_memory_mb` (at least
        4 MiB): half is its block cache, the rest two write buffers of a quarter each.
        """
        share = max((self.worker_rocksdb_memory_mb << 20) // self.topic_partitions, 4 << 20)
        return {
            "block_cache_size": share // 2,
            "write_buffer_size": share // 4,
            "max_write_buffer_number": 2,
        }

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options in the spelling kafka-python and aiokafka share."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile:
            options["ssl_cafile"] = str(self.kafka_ssl_cafile)
        if self.kafka_ssl_certfile:
            options["ssl_certfile"] = str(self.kafka_ssl_certfile)
        if self.kafka_ssl_keyfile:
            options["ssl_keyfile"] = str(self.kafka_ssl_keyfile)
        return options

    def aiokafka_client_options(self) -> dict[str, Any]:
        """kafka_client_options in aiokafka's spelling (TLS files become an SSL context), with
        the brokers' address: what the collector's and alert delivery's clients start with."""
        options = self.kafka_client_options()
        cafile = options.pop("ssl_cafile", None)
        certfile = options.pop("ssl_certfile", None)
        keyfile = options.pop("ssl_keyfile", None)
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=cafile)
            if certfile:
                context.load_cert_chain(certfile, keyfile)
            options["ssl_context"] = context
        return options | {"bootstrap_servers": self.bootstrap_servers}

    def secret_text(
        self,
        name: Literal["collector_tokens", "context_tokens", "alert_webhooks"],
        error: type[Exception] = SettingsError,
    ) -> tuple[str, str] | None:
        """A secret configured inline (`JOURNEYS_<NAME>`) or in a file (`JOURNEYS_<NAME>_FILE`),
        never both (two sources of secrets would leave a reader guessing which one holds it):
        its text, and where it came from for messages; None when neither is set. Raises
        `error` when both are set or the file cannot be read."""
        variable = f"{ENV_PREFIX}{name.upper()}"
        inline: SecretStr | None = getattr(self, name)
        path: Path | None = getattr(self, f"{name}_file")
        if inline is not None and path is not None:
            raise error(f"both {variable} and {variable}_FILE are set, expected one of them")
        if inline is not None:
            return inline.get_secret_value(), variable
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8"), f"{variable}_FILE ({path})"
        except (OSError, UnicodeDecodeError) as exc:
            raise error(f"{variable}_FILE: cannot read {path}: {exc}") from None

    def kafka_command_options(self) -> dict[str, Any]:
        """kafka_client_options for the commands' kafka-python clients, which otherwise wait
        30 s in silence for an unreachable broker before saying anything."""
        timeout_ms = int(self.kafka_connect_timeout_seconds * 1000)
        return self.kafka_client_options() | {"bootstrap_timeout_ms": timeout_ms}


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and overrides); raise SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = ENV_PREFIX + field.upper() if field else "settings"
        value = error.get("input")
        secret = "password" in field
        shown = (
            "" if secret or not field or isinstance(value, dict) else f" (got {str(value)[:60]!r})"
        )
        lines.append(f"{name}: {error['msg']}{shown}")
    return "invalid configuration: " + "; ".join(lines)
