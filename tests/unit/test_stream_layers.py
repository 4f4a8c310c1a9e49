"""The worker imports nothing above its layer: no dashboards package, no Grafana SDK."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import pipeline.stream.worker, pipeline.stream.runtime, pipeline.stream.health
print(json.dumps(sorted(m for m in sys.modules
                        if m.startswith(("pipeline.dashboards", "grafana_foundation_sdk")))))
"""


def test_the_worker_loads_no_dashboard_or_grafana_module() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, check=True)
    assert json.loads(done.stdout) == []
