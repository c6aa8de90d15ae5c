"""What `mqchat up` tells a person once everything answered: where to go, what runs where."""

from __future__ import annotations

import sys

from core import __version__
from core.settings import Settings
from mqchat.causes import redact_uri


def addresses(settings: Settings, store_uri: str, embedded_store: bool) -> dict[str, str | int]:
    """The facts of the banner, also logged as the fields of `up.ready`."""
    base = f"http://{settings.public_host}:{settings.api_port}"
    host, port = settings.broker_address
    return {
        "web_client": f"{base}/",
        "api": f"{base}/api" + _more_processes(settings),
        "openapi": f"{base}/schema",
        "mqtt_port": port if settings.broker == "external" else settings.mqtt_port,
        "ws_port": settings.ws_port,
        "ws_url": "" if settings.broker == "external" else settings.ws_url,
        "data_dir": str(settings.data_dir.resolve()),
        "broker": _broker(settings, host, port),
        "store": f"embedded (nx-27017) at {redact_uri(store_uri)}" if embedded_store else f"MongoDB at {redact_uri(store_uri)}",
    }


def _more_processes(settings: Settings) -> str:
    """With several API processes, the ports they serve (each answers the whole API)."""
    if settings.api_processes == 1:
        return ""
    return f" ({settings.api_processes} processes on ports {settings.api_port}-{settings.api_port + settings.api_processes - 1})"


def _broker(settings: Settings, host: str, port: int) -> str:
    if settings.broker == "nats":
        last = settings.nats_nodes - 1
        return f"NATS cluster of {settings.nats_nodes} (MQTT on ports {settings.mqtt_port}-{settings.mqtt_port + last})"
    return "embedded (amqtt)" if settings.broker == "embedded" else f"external at {host}:{port}"


def print_banner(facts: dict[str, str | int]) -> None:
    """A short coloured panel on stderr (console mode only)."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Web client", f"[link={facts['web_client']}]{facts['web_client']}[/link]")
    table.add_row("API", str(facts["api"]))
    table.add_row("OpenAPI", str(facts["openapi"]))
    mqtt = f"port {facts['mqtt_port']}"
    table.add_row("MQTT", mqtt if "embedded" in str(facts["broker"]) else f"{facts['broker']}")
    if facts["ws_url"]:
        table.add_row("WebSocket", f"port {facts['ws_port']} ({facts['ws_url']})")
    table.add_row("Broker", str(facts["broker"]))
    table.add_row("Store", str(facts["store"]))
    table.add_row("Data", str(facts["data_dir"]))
    console = Console(stderr=True)
    console.print(Panel(table, title=f"[bold green]mqchat {__version__} is ready[/]", title_align="left", expand=False))
    console.print("Ctrl-C stops everything.", style="dim")
    sys.stderr.flush()
