"""Fixtures of the deployment tests (helpers in ``support.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.support import ROOT, require_tool


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool", "Debian's prometheus package")


@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory) -> Path:
    """Real secret files, made by the script operators use."""
    directory = tmp_path_factory.mktemp("secrets") / "secrets"
    subprocess.run([sys.executable, str(ROOT / "deploy" / "generate_secrets.py"), str(directory)],
                   check=True, capture_output=True, text=True)
    return directory
