"""Debian's chromium, headless, for the tests that open the report as a reader would: its
DOM after the scripts ran, and a screenshot that must not be blank."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)  # fmt: skip


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run Debian's chromium headless with a new, empty profile."""
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed (apt-get install chromium; .ci/run does it)"
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


def assert_not_blank(png: Path) -> None:
    image = Image.open(png).convert("RGB")
    pixels = list(image.getdata())
    ink = sum(1 for r, g, b in pixels if min(r, g, b) < 200)
    assert len(set(pixels)) > 50, "the screenshot has almost no distinct colours"
    assert ink > 0.03 * len(pixels), f"only {ink} of {len(pixels)} pixels are not near-white"
