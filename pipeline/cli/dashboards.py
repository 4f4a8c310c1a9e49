"""`journeys dashboards`: regenerate the Grafana JSON, deploy it to a Grafana."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.common import Group, errors_as_exit, fail, out, settings_or_exit


@click.group(cls=Group)
def dashboards() -> None:
    """Grafana dashboards as code: build the committed JSON, deploy it over Grafana's API."""


@dashboards.command()
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write (default: the repository's dashboards/ directory).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a generated file is stale.")
def build(directory: Path | None, check: bool) -> None:
    """Regenerate dashboards/*.json and the alert rules from pipeline/dashboards/."""
    from pipeline.dashboards import REPO_DASHBOARDS_DIR, render_all, stale_files, write_all

    target = directory or REPO_DASHBOARDS_DIR
    if check:
        stale = stale_files(target)
        if stale:
            fail("stale (run `journeys dashboards build`): " + ", ".join(map(str, stale)))
        out.print(f"{len(render_all())} generated files are up to date in {target}")
        return
    written = write_all(target)
    for path in written:
        out.print(f"wrote {path}")
    out.print(f"{len(written)} file(s) changed, {len(render_all()) - len(written)} unchanged")


@dashboards.command()
@click.option("--url", required=True, help="Grafana's base URL, e.g. http://localhost:3000")
def deploy(url: str) -> None:
    """Create the folder and datasource if missing, upsert every dashboard and the alert
    rules, and give each department with a webhook (JOURNEYS_ALERT_WEBHOOKS) a contact
    point and a route in the notification policy.

    Credentials come from JOURNEYS_GRAFANA_TOKEN, or JOURNEYS_GRAFANA_USER and
    JOURNEYS_GRAFANA_PASSWORD; the datasource from JOURNEYS_GRAFANA_CLICKHOUSE_*.
    """
    from pipeline.alerts import WebhookConfigError, webhooks_from_settings
    from pipeline.dashboards import DASHBOARDS, dashboard_model
    from pipeline.dashboards.deploy import DeployError, connect, datasource_payload
    from pipeline.dashboards.deploy import deploy as deploy_all

    settings = settings_or_exit()
    with errors_as_exit(DeployError, WebhookConfigError):
        webhooks = {d: hook.url for d, hook in webhooks_from_settings(settings).items()}
        api = connect(url, settings)
        models = [dashboard_model(name) for name in DASHBOARDS]
        changes = deploy_all(api, models, datasource_payload(settings), webhooks)
    for change in changes:
        out.print(str(change))
    changed = sum(change.action != "unchanged" for change in changes)
    out.print(f"{changed} change(s) on {url}")
