"""`dopomoga up` (the whole stack on this machine) and `dopomoga emulate` (the registry emulator)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from dopomoga.budget.commands import period_closed
from services.platform.topology import SERVICES, TOPICS, bootstrap_of, create_topics

app = typer.Typer(no_args_is_help=True)
# Piped or logged output (CI, `make run | tee`) gets room for the summary tables.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)
VAR = Path("var")
EXAMPLES = Path("examples")


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
    from services.devstack.demo import DEMO_CLOSER, load_allocation_file
    from services.devstack.registry import Registry, read_jsonl

    if file is None and not synthetic and not allocations and not close:
        err.print("give a FILE, --synthetic N, --allocations or --close")
        raise typer.Exit(2)
    with Registry(bootstrap_of(broker)) as registry:
        for command in load_allocation_file(allocations) if allocations else []:
            registry.command(command)
            console.print(f"allocation {command.program_id} {command.year}: {command.annual_kop} kop")
        sent = 0
        if file is not None:
            sent = registry.publish_raw(read_jsonl(file), rate or None)
        elif synthetic:
            from dopomoga.rules.programs import Catalog
            from services.devstack.synthetic import SyntheticRegistry

            sent = registry.publish(SyntheticRegistry(Catalog.load(), seed=seed).generate(synthetic), rate or None)
        if sent:
            console.print(f"published {sent} applications")
        for spec in close:
            program_id, period, *district = spec.split(":")
            registry.command(period_closed(program_id, period, district[0] if district else None, closed_by=DEMO_CLOSER))
            console.print(f"closed {spec}")


def _migrate(var: Path, prefix: str) -> str:
    """`dopomoga migrate` on the ledger the budget service of this run will open."""
    import os

    from dopomoga.budget.location import ledger_url
    from services.migrate import report
    from services.platform.topology import SERVICE_BY_NAME

    if os.environ.get("DOPOMOGA_DB"):
        return report(ledger_url())
    group = SERVICE_BY_NAME["budget"].group
    return report(f"sqlite:///{var.resolve() / f'{prefix}{group}-ledger.sqlite'}")


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
    metrics: bool = typer.Option(True, "--metrics/--no-metrics", help="serve /metrics on ports 9101-9105"),
) -> None:
    """Start the broker (unless --broker), the topics and the services; with --demo replay the examples."""
    from services.devstack.broker import start_broker
    from services.devstack.supervisor import Supervisor, add_services, default_metrics_ports, service_env

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
        console.print(_migrate(var, prefix))  # once, before any service opens the ledger
        ports = default_metrics_ports() if metrics else {}
        # The treasury follower writes payment registers under <var>/registers as final decisions arrive.
        # DOPOMOGA_DEV=1: the local stack accepts the development API keys and console users.
        extra = {"DOPOMOGA_REGISTERS": str(var.resolve() / "registers"), "DOPOMOGA_DEV": "1"}
        envs = service_env(broker, var.resolve(), prefix=prefix, metrics=ports, extra=extra)
        add_services(supervisor, (spec.name for spec in SERVICES), envs, var / "logs")
        supervisor.start()
        console.print(
            "services: " + ", ".join(s.name for s in supervisor.services) + f"  (logs in {var / 'logs'}"
            + (f", metrics on 127.0.0.1:{min(ports.values())}-{max(ports.values())}" if metrics else "") + ")"
        )
        if demo:
            from services.devstack.demo import run_demo

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
