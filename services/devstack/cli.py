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
    """Registry emulator: publish applications (JSONL or synthetic) and budget commands; exits 1 when
    the broker did not acknowledge every record."""
    from services.devstack.registry import Undelivered

    if file is None and not synthetic and not allocations and not close:
        err.print("give a FILE, --synthetic N, --allocations or --close")
        raise typer.Exit(2)
    try:
        _emulate(broker, file, synthetic, rate, seed, allocations, close)
    except Undelivered as exc:  # the broker did not take everything: say so, exit non-zero
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _emulate(broker: str, file: Path | None, synthetic: int, rate: float, seed: int,
             allocations: Path | None, close: list[str]) -> None:
    from services.devstack.demo import DEMO_CLOSER, load_allocation_file
    from services.devstack.registry import Registry, read_jsonl

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


def _report_exit(service, code: int | None) -> None:
    """Say on `dopomoga up`'s output that a supervised process died (and is being restarted)."""
    kept = " (durable storage: acknowledged events are kept)" if service.name == "broker" else ""
    console.print(f"[red]{service.name} exited (code {code}); restarting{kept}[/red]")


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
    storage: str = typer.Option("durable", help="embedded broker: 'durable' (S3 on a local SeaweedFS under "
                                "<var>/broker: acknowledged events survive a broker restart) or 'memory'"),
) -> None:
    """Start the broker (unless --broker), the topics and the services; with --demo replay the examples."""
    import shutil

    from services.devstack.broker import durable_broker, start_broker
    from services.devstack.supervisor import Supervisor, add_services, default_metrics_ports, service_env

    if storage not in ("durable", "memory"):
        err.print("--storage is 'durable' or 'memory'")
        raise typer.Exit(2)
    var.mkdir(parents=True, exist_ok=True)
    (var / "logs").mkdir(exist_ok=True)
    embedded = None
    prefix = ""
    supervisor = Supervisor(on_exit=_report_exit)
    if broker is None:
        if fresh:
            # A fresh run: new consumer-group prefix, no old broker data, no old SQLite state.
            prefix = f"run{int(time.time())}-"
            for stale in var.glob("*.sqlite*"):
                stale.unlink()
            shutil.rmtree(var / "broker", ignore_errors=True)
        if storage == "memory":
            embedded = start_broker(log_path=var / "logs" / "broker.log")
            broker = embedded.url
            console.print(f"[green]embedded broker[/green] (Tansu, memory storage: lost when it stops) on {embedded.bootstrap}")
        else:
            durable = durable_broker(var / "broker", var / "logs").start()
            supervisor.services.extend(durable.processes)  # restarted like any service, on the same ports
            broker = durable.url
            console.print(f"[green]embedded broker[/green] (Tansu, S3 storage on SeaweedFS under {var / 'broker'}, "
                          f"supervised) on {durable.bootstrap}")
    bootstrap = bootstrap_of(broker)
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
            if embedded is not None and not embedded.alive():  # memory storage: what it held is gone
                console.print(f"[red]the embedded broker exited (code {embedded.process.returncode}); with memory "
                              "storage its events are lost - stopping[/red]")
                raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        signal.signal(signal.SIGTERM, previous)
        supervisor.stop()
        if embedded:
            embedded.stop()
        console.print("stopped")
