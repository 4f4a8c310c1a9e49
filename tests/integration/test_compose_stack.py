"""The production compose stack, checked as far as possible without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:[:?-][^}]*)?\}")
LONG_RUNNING = ("kafka", "clickhouse", "worker", "collector", "alert-delivery", "grafana")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = [str(v).split(":") for v in service.get("volumes", [])]
    return [(m[0], m[1]) for m in mounts if m[0].startswith(".")]


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "kafka-topics", "clickhouse", "migrate", "worker", "grafana"} <= set(services)
    assert services["simulator"]["profiles"] == ["simulate"]
    assert services["migrate"]["environment"]["JOURNEYS_CLICKHOUSE_MODE"] == "server"
    assert services["worker"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = str(service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and re.match(r"^\d+(\.\d+)+", tag), f"{name}: {image} is not pinned"
        assert "latest" not in tag, f"{name}: {image}"
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    plugin = compose["services"]["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    assert re.fullmatch(r"grafana-clickhouse-datasource@\d+\.\d+\.\d+", plugin)


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    mounts = [m for s in compose["services"].values() for m in bind_mounts(s)]
    assert len(mounts) >= 6
    for source, _ in mounts:
        assert (REPO / source).exists(), f"{source} is mounted but missing"


def test_named_volumes_are_declared_and_long_runners_have_health_checks(
    compose: dict[str, Any],
) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    for name in LONG_RUNNING:
        assert compose["services"][name]["healthcheck"]["test"], name
        assert compose["services"][name]["restart"] == "unless-stopped"


def test_every_variable_is_documented_and_no_secret_is_committed(
    env_example: dict[str, str],
) -> None:
    used = set(VARIABLE.findall((REPO / "docker-compose.yml").read_text()))
    assert used - env_example.keys() == set(), "used in compose, missing from .env.example"
    assert env_example.keys() - used == set(), "documented in .env.example, never used"
    for name, value in env_example.items():
        if re.search("PASSWORD|SECRET|TOKEN", name):
            assert value == "", f"{name} has a value in .env.example"


def test_variables_read_by_mounted_config_reach_their_container(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        for source, _ in bind_mounts(service):
            path = REPO / source
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for file in files:
                lines = file.read_text(errors="replace").splitlines()
                text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
                wanted = set(re.findall(r'from_env="([A-Z_0-9]+)"', text))
                if file.suffix in (".yaml", ".yml"):
                    wanted |= set(re.findall(r"\$([A-Z][A-Z0-9_]+)", text))
                    wanted -= {"__expr__"}
                missing = wanted - environment.keys()
                assert not missing, f"{name}: {file.name} reads {missing}"


def test_containers_run_registered_journeys_commands(compose: dict[str, Any]) -> None:
    for name in ("migrate", "worker", "collector", "alert-delivery", "simulator"):
        command = compose["services"][name]["command"][0]
        assert command in COMMANDS, f"{name} runs `journeys {command}`, which is not registered"


def test_simulator_options_exist() -> None:
    from pipeline.cli.simulate import simulate_command

    options = {opt for param in simulate_command.params for opt in getattr(param, "opts", [])}
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for argument in compose["services"]["simulator"]["command"][1:]:
        assert argument.split("=")[0] in options, argument


def test_the_worker_image_installs_the_package_as_the_docs_say() -> None:
    """The image builds the wheel `pip install .` would (engine compiled, in a stage with a
    C compiler) and installs it with the pins, as the docs tell hosts without Docker to."""
    dockerfile = (REPO / "Dockerfile").read_text()
    steps = re.findall(r"^RUN (pip (?:install|wheel) .*)$", dockerfile, flags=re.MULTILINE)
    assert steps == [
        "pip wheel --no-cache-dir --no-deps -w /wheel .",
        "pip install -c constraints.txt /wheel/journey_pipeline-*.whl && rm -rf /wheel",
    ]
    assert re.search(r"^RUN apt-get .* gcc ", dockerfile, flags=re.MULTILINE)
    assert len(re.findall(r"^FROM python:3\.11\.\d+-slim", dockerfile, flags=re.MULTILINE)) == 2
    documented = (REPO / "README.md").read_text()
    if "pip install -c constraints.txt ." not in documented:
        # README links the production guide, which holds the install steps.
        documented = (REPO / "docs" / "production.md").read_text()
    assert "pip install -c constraints.txt ." in documented


def test_every_journeys_variable_in_compose_is_a_setting(compose: dict[str, Any]) -> None:
    """A misspelt JOURNEYS_ variable would be ignored silently by the settings object."""
    from pipeline.settings import ENV_PREFIX, Settings

    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith(ENV_PREFIX):
                assert variable in fields, f"{name}: {variable} is not a setting"
    worker = compose["services"]["worker"]["environment"]
    assert worker["JOURNEYS_CLICKHOUSE_USER"] == "journeys_writer"
    assert worker["JOURNEYS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_the_worker_health_check_asks_readiness_and_its_metrics_are_published(
    compose: dict[str, Any],
) -> None:
    """Faust's `/` answers while Kafka and ClickHouse are down; `/readyz` does not."""
    from pipeline.settings import Settings

    worker = compose["services"]["worker"]
    check = " ".join(worker["healthcheck"]["test"])
    port = Settings.model_fields["worker_web_port"].default
    assert f"http://127.0.0.1:{port}/readyz" in check
    # Published for a Prometheus on the host, never on every interface.
    published = [str(p) for p in worker["ports"]]
    assert published == [f"127.0.0.1:${{WORKER_WEB_PORT:-{port}}}:{port}"]
    # The container's own loopback is not where Docker forwards the published port.
    assert worker["environment"]["JOURNEYS_WORKER_WEB_HOST"] == "0.0.0.0"


def test_unauthenticated_listeners_are_published_on_loopback_only(
    compose: dict[str, Any],
) -> None:
    """Kafka's external listener, ClickHouse's HTTP port and the worker's metrics take
    connections without credentials: reachable from this host, not from the network."""
    for name in ("kafka", "clickhouse", "worker", "collector", "alert-delivery"):
        for published in compose["services"][name]["ports"]:
            assert str(published).startswith("127.0.0.1:"), f"{name} publishes {published}"


def test_every_deployment_makes_its_own_kafka_cluster_id(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    assert env_example["KAFKA_CLUSTER_ID"] == "", "a usable example id would be kept by everyone"
    # `:?` refuses an empty value as well as an unset one.
    cluster_id = compose["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert cluster_id.startswith("${KAFKA_CLUSTER_ID:?"), cluster_id


def test_the_worker_gets_time_to_stop_by_itself(compose: dict[str, Any]) -> None:
    from pipeline.settings import load_settings

    grace = compose["services"]["worker"].get("stop_grace_period", "10s")
    assert grace.endswith("s") and grace[:-1].isdigit(), grace
    # The worker's own deadline ends first, so compose never has to SIGKILL it.
    assert load_settings().worker_stop_seconds + 2 <= int(grace[:-1])


def test_the_collector_takes_its_tokens_from_a_secret_and_is_checked_on_its_health_page(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    """Tokens in a variable would show in `docker inspect`; a file secret does not."""
    from pipeline.settings import Settings

    collector = compose["services"]["collector"]
    environment = collector["environment"]
    assert "JOURNEYS_COLLECTOR_TOKENS" not in environment
    secret = environment["JOURNEYS_COLLECTOR_TOKENS_FILE"]
    assert secret == f"/run/secrets/{collector['secrets'][0]}"
    source = compose["secrets"][collector["secrets"][0]]["file"]
    assert (
        source.startswith("${COLLECTOR_TOKENS_FILE:?")
        and env_example["COLLECTOR_TOKENS_FILE"] == ""
    )
    port = Settings.model_fields["collector_port"].default
    assert collector["ports"] == [f"127.0.0.1:${{COLLECTOR_PORT:-{port}}}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(collector["healthcheck"]["test"])
    assert environment["JOURNEYS_COLLECTOR_HOST"] == "0.0.0.0"
    # Kafka only: no ClickHouse credentials in a service that needs none.
    assert not [v for v in environment if "CLICKHOUSE" in v]
    grace = int(collector["stop_grace_period"].rstrip("s"))
    assert Settings.model_fields["collector_ack_timeout_seconds"].default + 2 <= grace


def test_the_alert_delivery_runs_beside_the_worker_with_its_webhooks_from_a_secret(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    """`journeys alerts deliver`: the departments' webhook secrets in a file secret (a
    variable would show in `docker inspect`), its /metrics published on loopback and asked
    by the health check, Kafka only, and time to finish what is in flight at a stop."""
    from click.testing import CliRunner

    from pipeline.cli import cli
    from pipeline.settings import Settings

    delivery = compose["services"]["alert-delivery"]
    assert delivery["command"] == ["alerts", "deliver"]
    assert CliRunner().invoke(cli, delivery["command"] + ["--help"]).exit_code == 0
    assert delivery["image"] == compose["services"]["worker"]["image"]
    environment = delivery["environment"]
    assert "JOURNEYS_ALERT_WEBHOOKS" not in environment
    assert environment["JOURNEYS_ALERT_WEBHOOKS_FILE"] == f"/run/secrets/{delivery['secrets'][0]}"
    source = compose["secrets"][delivery["secrets"][0]]["file"]
    assert source.startswith("${ALERT_WEBHOOKS_FILE:?") and env_example["ALERT_WEBHOOKS_FILE"] == ""
    # The same alerts topic as the worker publishes to.
    worker = compose["services"]["worker"]["environment"]
    assert environment["JOURNEYS_TOPIC_ALERTS"] == worker["JOURNEYS_TOPIC_ALERTS"]
    assert (
        environment["JOURNEYS_KAFKA_BOOTSTRAP_SERVERS"]
        == worker["JOURNEYS_KAFKA_BOOTSTRAP_SERVERS"]
    )
    assert not [v for v in environment if "CLICKHOUSE" in v]
    port = Settings.model_fields["alert_delivery_metrics_port"].default
    assert delivery["ports"] == [f"127.0.0.1:${{ALERT_DELIVERY_METRICS_PORT:-{port}}}:{port}"]
    assert f"http://127.0.0.1:{port}/metrics" in " ".join(delivery["healthcheck"]["test"])
    assert environment["JOURNEYS_ALERT_DELIVERY_METRICS_HOST"] == "0.0.0.0"
    grace = int(delivery["stop_grace_period"].rstrip("s"))
    assert Settings.model_fields["worker_stop_seconds"].default + 2 <= grace
