"""Puts the scripted `pulumi` (fake_pulumi.py beside this file) on a PATH: a `pulumi` script in a directory."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

FAKE_PULUMI = Path(__file__).with_name("fake_pulumi.py")


def pulumi_wrapper(bin_dir: Path, site_packages: bool = False) -> Path:
    """`bin_dir/pulumi`, which runs the scripted CLI with this Python. Without `site_packages` it starts with -S
    (quick, the standard library only); the journeys' program reads stacks through the project's own packages."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "pulumi"
    flags = "" if site_packages else "-S "
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {flags}{shlex.quote(str(FAKE_PULUMI))} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper
