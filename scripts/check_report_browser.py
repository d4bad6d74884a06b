#!/usr/bin/env python3
"""Render a dormsig HTML report in headless Chromium (offline) and save a screenshot.

Usage::

    python scripts/check_report_browser.py REPORT.html SCREENSHOT.png [--chromium /usr/bin/chromium]

Run by hand, not in CI (it needs the Debian ``chromium`` package: ``apt-get install -y chromium``).
Every network feature of the browser is switched off, so the screenshot shows what a reader sees
with no internet: if a figure or style depended on the network it would be missing. Exit code 0
when the screenshot was written and is a non-blank PNG, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def screenshot(report: Path, out: Path, *, chromium: str = "/usr/bin/chromium", width: int = 1400,
               height: int = 4000, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``report`` and write a PNG screenshot to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dormsig-chromium-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--screenshot={out.resolve()}", f"--window-size={width},{height}",
            report.resolve().as_uri(),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _non_blank(png: Path) -> bool:
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib; without it only check the signature
        return png.read_bytes().startswith(PNG_MAGIC)
    with Image.open(png) as img:
        lo, hi = img.convert("L").getextrema()
    return hi - lo > 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report .html")
    parser.add_argument("screenshot", type=Path, help="PNG to write")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"{args.report}: no such file", file=sys.stderr)
        return 1
    if shutil.which(args.chromium) is None:
        print(f"{args.chromium}: not found (apt-get install -y chromium)", file=sys.stderr)
        return 1
    args.screenshot.unlink(missing_ok=True)
    proc = screenshot(args.report, args.screenshot, chromium=args.chromium, width=args.width, height=args.height)
    if not args.screenshot.exists() or not args.screenshot.read_bytes().startswith(PNG_MAGIC):
        print(f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        return 1
    if not _non_blank(args.screenshot):
        print(f"{args.screenshot}: the page rendered blank", file=sys.stderr)
        return 1
    print(f"{args.screenshot}: {args.screenshot.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
