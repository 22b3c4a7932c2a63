"""Top-level `dopomoga` commands for the streaming services: `up`, `topics`, `emulate`."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from services.topology import TOPICS, bootstrap_of, create_topics

app = typer.Typer(no_args_is_help=True)
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics of the streaming services.")
app.add_typer(topics_app, name="topics")
# Piped or logged output (CI, `make run | tee`) gets room for the summary tables.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)
VAR = Path("var")
EXAMPLES = Path("examples")


@topics_app.command("create")
def topics_create(
    broker: str = typer.Option("kafka://127.0.0.1:9092", envvar="DOPOMOGA_BROKER"),
    replication: int = typer.Option(1, help="replication factor: 1 for the embedded broker, 3 in production"),
) -> None:
    """Create every topic of the topology (existing ones are kept)."""
    result = create_topics(bootstrap_of(broker), replication=replication)
    for spec in TOPICS:
        console.print(f"{spec.name:24} {spec.partitions} partitions  key={spec.key:45} {result[spec.name]}")


@topics_app.command("list")
def topics_list() -> None:
    """Show the declared topology."""
    for spec in TOPICS:
        days = spec.retention_ms // 86_400_000
        console.print(f"{spec.name:24} {spec.partitions} partitions  {days:5} days  key={spec.key}  value={spec.value}")


@app.command()
def emulate(
    file: Path | None = typer.Argument(None, exists=True, dir_okay=False, help="applications, one JSON per line"),
    synthetic: int = typer.Option(0, help="publish N synthetic applications instead of a file"),
    rate: float = typer.Option(0.0, help="applications per second (0 = as fast as possible)"),
    seed: int = typer.Option(1, help="seed of the synthetic registry"),
    broker: str = typer.Option("kafka://127.0.0.1:9092", envvar="DOPOMOGA_BROKER"),
    allocations: Path | None = typer.Option(None, exists=True, help="also publish these AllocationSet commands"),
    close: list[str] = typer.Option([], help="publish PeriodClosed for PROGRAM:YYYY-MM[:DISTRICT] (repeatable)"),
) -> None:
    """Registry emulator: publish applications (JSONL or synthetic) and budget commands."""
    from services.registry.emulator import Registry, read_jsonl

    if file is None and not synthetic and not allocations and not close:
        err.print("give a FILE, --synthetic N, --allocations or --close")
        raise typer.Exit(2)
    with Registry(bootstrap_of(broker)) as registry:
        for command in load_allocations(allocations) if allocations else []:
            registry.command(command)
            console.print(f"allocation {command.program_id} {command.year}: {command.annual_kop} kop")
        sent = 0
        if file is not None:
            sent = registry.publish_raw(read_jsonl(file), rate or None)
        elif synthetic:
            from dopomoga.rules.programs import Catalog
            from services.registry.synthetic import SyntheticRegistry

            sent = registry.publish(SyntheticRegistry(Catalog.load(), seed=seed).generate(synthetic), rate or None)
        if sent:
            console.print(f"published {sent} applications")
        for spec in close:
            program_id, period, *district = spec.split(":")
            registry.command(period_closed(program_id, period, district[0] if district else None))
            console.print(f"closed {spec}")


def load_allocations(path: Path):
    from schemas.events import AllocationSet

    data = json.loads(path.read_text(encoding="utf-8"))
    return [AllocationSet.model_validate(item) for item in data["allocations"]]


def period_closed(program_id: str, period: str, district: str | None):
    from dopomoga.rules.engine import decision_id
    from schemas.events import PeriodClosed

    ident = decision_id("period-closed", f"{program_id}:{period}:{district or ''}")
    year, month = (int(x) for x in period.split("-"))
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)) if month < 12 else dt.date(year, 12, 31)
    return PeriodClosed(
        event_id=ident,
        occurred_at=dt.datetime.combine(last, dt.time(23, 59), tzinfo=dt.UTC),
        program_id=program_id,
        district=district,
        period=period,
        closed_by="dopomoga-demo",
    )


def _gateway_command() -> list[str] | None:
    """How to run the gateway, if its module exposes an ``app`` (FastAPI/ASGI or Faust)."""
    for module_name in ("services.gateway", "services.gateway.app"):
        try:
            module = importlib.import_module(module_name)
        except Exception:
            continue
        target = getattr(module, "app", None)
        if target is None:
            continue
        import faust

        if isinstance(target, faust.App):
            return [sys.executable, "-m", "faust", "-A", module_name, "worker", "--without-web", "-l", "warning"]
        port = os.environ.get("DOPOMOGA_GATEWAY_PORT", "8000")
        return [sys.executable, "-m", "uvicorn", f"{module_name}:app", "--host", "127.0.0.1", "--port", port,
                "--log-level", "warning"]
    return None


def demo_files() -> list[Path]:
    main = EXAMPLES / "applications.jsonl"
    if main.exists():
        return [main]
    return sorted(p for p in EXAMPLES.glob("*.jsonl") if p.is_file())


@app.command()
def up(
    broker: str | None = typer.Option(None, help="use this broker (kafka://HOST:PORT) instead of the embedded one"),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="replay the examples and print a summary"),
    var: Path = typer.Option(VAR, help="state directory (SQLite stores, logs)"),
    fresh: bool = typer.Option(True, "--fresh/--keep-state", help="embedded broker: start from empty state"),
    timeout: float = typer.Option(180.0, help="demo: seconds to wait for every final decision"),
    metrics: bool = typer.Option(True, "--metrics/--no-metrics", help="serve /metrics on ports 9101-9104"),
) -> None:
    """Start the broker (unless --broker), the topics and the services; with --demo replay the examples."""
    from services.broker import start_broker
    from services.supervisor import ServiceProcess, Supervisor, service_env

    var.mkdir(parents=True, exist_ok=True)
    (var / "logs").mkdir(exist_ok=True)
    embedded = None
    prefix = ""
    if broker is None:
        embedded = start_broker(log_path=var / "logs" / "broker.log")
        broker = embedded.url
        console.print(f"[green]embedded broker[/green] (Tansu, memory storage) on {embedded.bootstrap}")
        if fresh:
            # The embedded broker forgets everything on stop: the services' state must too.
            prefix = f"run{int(time.time())}-"
            for stale in var.glob("*.sqlite*"):
                stale.unlink()
    bootstrap = bootstrap_of(broker)
    supervisor = Supervisor()
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        create_topics(bootstrap)
        console.print(f"topics: {', '.join(t.name for t in TOPICS)}")
        ports = {"eligibility": 9101, "calculation": 9102, "budget": 9103, "gateway": 9104, "treasury": 9105} if metrics else {}
        envs = service_env(broker, var.resolve(), prefix=prefix, metrics=ports)
        for name in ("eligibility", "calculation", "budget"):
            supervisor.add(ServiceProcess(name, f"services.{name}", envs[name], var / "logs" / f"{name}.log"))
        gateway = _gateway_command()
        if gateway:
            supervisor.add(ServiceProcess("gateway", "", envs["gateway"], var / "logs" / "gateway.log", argv=gateway))
        # The treasury follower writes payment registers under var/registers as final decisions arrive.
        treasury = [sys.executable, "-m", "dopomoga.cli", "treasury", "consume", "--out", str(var.resolve() / "registers")]
        supervisor.add(ServiceProcess("treasury", "", envs["treasury"], var / "logs" / "treasury.log", argv=treasury))
        supervisor.start()
        console.print(
            "services: " + ", ".join(s.name for s in supervisor.services) + f"  (logs in {var / 'logs'}"
            + (", metrics on 127.0.0.1:9101-9105" if metrics else "") + ")"
        )
        if demo:
            from services.demo import run_demo

            run_demo(bootstrap, demo_files(), EXAMPLES / "allocations.json", timeout, console)
            console.print("demo done; services keep running - Ctrl-C stops everything")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        signal.signal(signal.SIGTERM, previous)
        supervisor.stop()
        if embedded:
            embedded.stop()
        console.print("stopped")
