"""`dopomoga topics ...`: the declared Kafka topology (create the topics, list them)."""

from __future__ import annotations

import typer
from rich.console import Console

from services.platform.topology import TOPICS, bootstrap_of, create_topics

app = typer.Typer(no_args_is_help=True, help="Kafka topics of the streaming services.")
console = Console()


@app.command("create")
def topics_create(
    broker: str = typer.Option("kafka://127.0.0.1:9092", envvar="DOPOMOGA_BROKER"),
    replication: int = typer.Option(1, help="replication factor: 1 for the embedded broker, 3 in production"),
) -> None:
    """Create every topic of the topology (existing ones are kept)."""
    result = create_topics(bootstrap_of(broker), replication=replication)
    for spec in TOPICS:
        console.print(f"{spec.name:24} {spec.partitions} partitions  key={spec.key:45} {result[spec.name]}")


@app.command("list")
def topics_list() -> None:
    """Show the declared topology."""
    for spec in TOPICS:
        days = spec.retention_ms // 86_400_000
        console.print(f"{spec.name:24} {spec.partitions} partitions  {days:5} days  key={spec.key}  value={spec.value}")
