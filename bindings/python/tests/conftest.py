"""Shared helpers for the psyne Python tests."""

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

# Generous: these VMs are small and loaded; nothing here asserts speed.
WAIT = 30.0


@pytest.fixture
def name():
    """A channel name no other test (or earlier run) uses."""
    return f"pytest-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def run_python(code, *args, timeout=WAIT, **kwargs):
    """Runs `code` in a fresh interpreter (this one's), returning the process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def start_python(code, *args, **kwargs):
    """Starts `code` in a fresh interpreter; the caller waits for it."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
