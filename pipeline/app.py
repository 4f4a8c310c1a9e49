"""The Faust app of the stream worker, configured from the environment.

faust -A pipeline.app worker -l info      # or: journeys run
"""

from __future__ import annotations

from pipeline.settings import load_settings
from pipeline.stream.worker import create_app

app = create_app(load_settings())
