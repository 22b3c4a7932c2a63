"""The `dopomoga` command is assembled in services/cli.py from the core's CLI and the services' commands;
the core's CLI stands alone. Every command of the operator journey keeps its name."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import typer.main

ROOT = Path(__file__).resolve().parents[1]


def _names(app) -> set[str]:
    group = typer.main.get_group(app)
    return set(group.commands)


def test_the_dopomoga_script_is_the_composition_root_with_every_command():
    from dopomoga.cli import app as core
    from services.cli import app

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["dopomoga"].partition(":")[0] == "services.cli"
    assert {"decide", "explain", "programs", "budget"} <= _names(core)
    assert _names(core) | {"treasury", "topics", "up", "emulate"} <= _names(app)
    group = typer.main.get_group(app)
    assert set(group.commands["treasury"].commands) == {"export", "reconcile", "consume"}
    assert set(group.commands["topics"].commands) == {"create", "list"}


def test_the_core_cli_runs_alone_without_importing_the_services():
    code = (
        "import sys, typer.main; from dopomoga.cli import app; "
        "print(' '.join(sorted(typer.main.get_group(app).commands))); "
        "print(sorted(m for m in sys.modules if m == 'services' or m.startswith('services.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commands, services = out.splitlines()
    assert {"budget", "decide", "explain", "programs"} <= set(commands.split()) and services == "[]"
