"""The signature check docs/departments.md gives departments works on a real delivery: the
snippet, run as written, accepts what `WebhookSender` signs and sends over HTTP, and refuses
a changed body, another secret and an old timestamp."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from pipeline.alerts import Webhook, sign
from pipeline.alerts.payload import sample_alert
from pipeline.alerts.sender import WebhookSender
from pipeline.kafka.local import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "departments.md"
SECRET = "field-service-secret-0123456789"


def documented_verifier() -> Callable[[bytes, Any, bytes], bool]:
    section = DOC.read_text().split("### Verifying the signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code, "docs/departments.md: no Python snippet under 'Verifying the signature'"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # the snippet, as published
    verifier: Callable[[bytes, Any, bytes], bool] = namespace["verify_alert"]
    return verifier


def test_the_documented_check_accepts_a_real_delivery_and_refuses_forgeries() -> None:
    verify_alert = documented_verifier()
    seen: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((dict(request.headers), body))
        ok = verify_alert(SECRET.encode(), request.headers, body)
        return web.Response(status=204 if ok else 401)

    async def scenario() -> list[int | None]:
        app = web.Application()
        app.router.add_post("/hook", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}/hook"
        alert = sample_alert("maintenance", datetime.now(UTC))
        statuses = []
        try:
            for secret in (SECRET, "another-secret-0123456789"):
                sender = WebhookSender(5.0)
                await sender.start()
                try:
                    webhook = Webhook("maintenance", url, SecretStr(secret))
                    answer = await sender.send(webhook, alert, 1)
                finally:
                    await sender.close()
                statuses.append(answer.status)
        finally:
            await runner.cleanup()
        return statuses

    assert asyncio.run(scenario()) == [204, 401]
    headers, body = seen[0]
    assert verify_alert(SECRET.encode(), headers, body)
    assert not verify_alert(SECRET.encode(), headers, body.replace(b"maintenance", b"maintenancf"))
    stale = int(time.time()) - 301
    old = headers | {"Journeys-Timestamp": str(stale),
                     "Journeys-Signature": sign(SECRET, stale, body)}  # fmt: skip
    assert not verify_alert(SECRET.encode(), old, body)  # signed right, but too long ago
