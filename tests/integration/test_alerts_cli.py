"""`journeys alerts test --department NAME`: one signed sample alert to the department's
webhook, the answer printed; clear exits for an unknown department and a dead receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.alerts import SignatureError, verify
from pipeline.cli import cli
from pipeline.kafka.local import free_port

SECRET = "billing-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                verify(SECRET, self.headers, body, now=time.time())
            except SignatureError as error:
                status, answer = 401, str(error).encode()
            else:
                received.append(json.loads(body))
                status, answer = 200, b'{"thanks": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def run(department: str, hooks: dict[str, str], secret: str = SECRET) -> Any:
    config = {d: {"url": url, "secret": secret} for d, url in hooks.items()}
    env = {"JOURNEYS_ALERT_WEBHOOKS": json.dumps(config)}
    return CliRunner().invoke(cli, ["alerts", "test", "--department", department], env=env)


def test_a_sample_alert_reaches_the_webhook_signed_and_the_answer_is_printed(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = receiver
    result = run("billing", {"billing": url})
    assert result.exit_code == 0, result.output
    assert f"POST {url}" in result.output and "status 200 in " in result.output
    assert '{"thanks": true}' in result.output
    (alert,) = received
    assert (alert["kind"], alert["department"], alert["test"]) == ("test", "billing", True)
    refused = run("billing", {"billing": url}, secret="not-the-receivers-secret")
    assert refused.exit_code == 1 and "status 401" in refused.output
    assert "does not match" in refused.output  # the receiver's answer, printed


def test_unknown_departments_and_dead_receivers_are_named() -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"
    unknown = run("sales", {"billing": down})
    assert unknown.exit_code == 2
    assert "'sales' has no webhook" in unknown.output and "billing" in unknown.output
    dead = run("billing", {"billing": down})
    assert dead.exit_code == 1 and "no answer after" in dead.output
    assert "ClientConnectorError" in dead.output
