"""The `mqchat` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import partial

import click

from core import __version__
from core.roles import Role
from core.settings import ConfigError, Settings
from mqchat.runtime import run_until_signalled


def _settings() -> Settings:
    try:
        return Settings.load()
    except ConfigError as exc:
        click.echo(f"mqchat: {exc}", err=True)
        sys.exit(2)


def _run_component(
    main: Callable[[Settings, asyncio.Event], Awaitable[int | None]], needs_store: bool = True, owns_data_dir: bool = False,
    sampled_as: str | None = None,
) -> None:
    """Run one long-lived component against the configured or running embedded store.

    `owns_data_dir`: take the data directory's lock first (`up`, `store`); a second one refuses at once.
    `sampled_as`: report the process's CPU, memory and open files under this component name (core.metrics).
    """
    from mqchat.lock import AlreadyRunning, DataDirLock
    from mqchat.store import StoreError, store_uri

    settings = _settings()
    if owns_data_dir:
        try:
            DataDirLock(settings.data_dir).acquire()  # held until this process ends
        except AlreadyRunning as exc:
            click.echo(f"mqchat: {exc}", err=True)
            sys.exit(1)

    async def with_store(stop: asyncio.Event) -> int | None:
        if not needs_store:
            return await main(settings, stop)
        async with store_uri(settings, start_if_missing=False) as uri:
            return await main(settings.with_store_uri(uri), stop)

    async def sampled(stop: asyncio.Event) -> int | None:
        if sampled_as is None:
            return await with_store(stop)
        from core.metrics import ProcessSampler
        from core.tasks import cancel_and_wait

        sampling = asyncio.create_task(ProcessSampler(sampled_as).run())
        try:
            return await with_store(stop)
        finally:
            await cancel_and_wait(sampling)

    try:
        sys.exit(run_until_signalled(settings, sampled))
    except StoreError as exc:
        click.echo(f"mqchat: {exc}", err=True)
        sys.exit(2)


@click.group()
@click.version_option(__version__, "--version", "-V", prog_name="mqchat", message="%(prog)s %(version)s")
def main() -> None:
    """mqchat: real-time chat backend over MQTT and REST."""


@main.command()
def up() -> None:
    """Start everything: embedded store (unless MONGODB_URI), broker, bridge and API."""
    from mqchat.supervisor import run_up

    _run_component(run_up, needs_store=False, owns_data_dir=True)


@main.command()
def broker() -> None:
    """Run only the embedded MQTT broker."""
    from broker.server import run_broker

    _run_component(run_broker, sampled_as="broker")


@main.command()
def bridge() -> None:
    """Run only the bridge worker."""
    from bridge.worker import run_bridge

    _run_component(run_bridge, sampled_as="bridge")


@main.command()
def webhooks() -> None:
    """Run only the webhook sender (the lead bridge worker runs one too; they share the backlog)."""
    from core.webhook_delivery import run_webhooks

    _run_component(run_webhooks, sampled_as="webhooks")


@main.command()
def api() -> None:
    """Run only the REST API."""
    from api.server import serve_api

    _run_component(serve_api, sampled_as="api")


@main.command()
def mosquitto() -> None:
    """Run Debian's Mosquitto with the shipped mosquitto.conf and the data dir, provisioned for mqchat."""
    from mqchat.mosquitto import MosquittoError, run_mosquitto

    try:
        _run_component(run_mosquitto, needs_store=False)
    except MosquittoError as exc:
        click.echo(f"mqchat: {exc}", err=True)
        sys.exit(2)


@main.command("nats")
@click.option("--node", type=int, default=None, help="Run only node i (one node per machine, MQCHAT_NATS_HOSTS).")
def nats_cluster(node: int | None) -> None:
    """Run a NATS JetStream cluster (MQCHAT_NATS_NODES nodes), or one node of it, with mqchat's auth callout service."""
    from mqchat.nats import NatsError, run_nats

    try:
        _run_component(partial(run_nats, node=node), sampled_as="nats" if node is None else f"nats-{node}")
    except NatsError as exc:
        click.echo(f"mqchat: {exc}", err=True)
        sys.exit(2)


@main.command()
def store() -> None:
    """Run only the embedded store (nx-27017) on MQCHAT_STORE_PORT."""
    from mqchat.store import EmbeddedStore

    async def serve(settings: Settings, stop: asyncio.Event) -> None:
        embedded = EmbeddedStore(settings.data_dir, settings.store_port)
        await embedded.start()
        embedded.publish_address()
        try:
            await stop.wait()
        finally:
            embedded.withdraw_address()
            await embedded.stop()

    _run_component(serve, needs_store=False, owns_data_dir=True)


def _one_off(action: Callable[[Settings], Awaitable[None]]) -> None:
    """Run a short command against the store, starting a private embedded one if none is running."""
    from core.db import init_db
    from core.errors import DomainError
    from core.logs import configure_logging
    from mqchat.store import store_uri

    settings = _settings()
    configure_logging("WARNING")

    async def run() -> None:
        async with store_uri(settings, start_if_missing=True) as uri:
            mongo = await init_db(settings, uri)
            try:
                await action(settings)
            finally:
                await mongo.close()

    try:
        asyncio.run(run())
    except DomainError as exc:
        click.echo(f"mqchat: {exc.message}", err=True)
        sys.exit(1)


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.CUSTOMER.value, show_default=True)
@click.option("--username", default=None, help="Display name (default: the part of the email before @).")
def user_create(email: str, password: str, role: str, username: str | None) -> None:
    """Create a user of any role; prints its id."""
    import msgspec

    from core.payloads import CreateUserRequest
    from core.security import configure_password_hashing
    from core.services import audit
    from core.services.users import create_user

    try:
        request = msgspec.convert(
            {"email": email, "password": password, "role": role, "username": username or email.split("@")[0]},
            CreateUserRequest,
        )
    except msgspec.ValidationError as exc:
        click.echo(f"mqchat: {exc}", err=True)
        sys.exit(2)

    async def action(settings: Settings) -> None:
        configure_password_hashing(settings)
        created = await create_user(request.email, request.username, request.password, request.role)
        await audit.record(audit.CLI_ACTOR, "user.created", "user", str(created.id), role=created.role.value)
        click.echo(str(created.id))

    _one_off(action)


@main.command()
@click.option("--email", required=True)
def token(email: str) -> None:
    """Print an access token for the user with this email (for mosquitto_sub), alone on stdout."""
    from core.documents import User
    from core.security import issue_token
    from core.services.users import normalize_email

    async def action(settings: Settings) -> None:
        found = await User.find_one({"email": normalize_email(email)})
        if found is None or not found.active:
            click.echo("mqchat: no active user with this email", err=True)
            sys.exit(1)
        click.echo(issue_token(str(found.id), settings.jwt_secret, settings.access_token_ttl, version=found.token_version))

    _one_off(action)


@main.command("search-index")
def search_index() -> None:
    """Index the words of messages stored before message search existed (safe while mqchat runs)."""
    from core.services.search.indexer import index_older

    async def action(_: Settings) -> None:
        click.echo(f"indexed {await index_older()} messages")

    _one_off(action)


@main.command("desk-rollups")
@click.option("--rebuild", is_flag=True, help="Drop the counters and count everything again (stop the desk first).")
@click.option("--check", "check_days", type=click.IntRange(1, 400), default=None, metavar="DAYS",
              help="Compare the counters with a full scan of the last DAYS days (UTC days; per agent and per team).")  # fmt: skip
def desk_rollups(rebuild: bool, check_days: int | None) -> None:
    """Count tickets and ratings stored before the desk counters existed into them (once after upgrading; safe while mqchat runs and to repeat)."""
    from datetime import timedelta

    from core.clock import utcnow
    from core.services import analytics_scan, rollups
    from core.services.analytics import Scope, make_period

    async def action(_: Settings) -> None:
        if check_days is not None:
            now = utcnow()
            period = make_period(now - timedelta(days=check_days), now, "day", "UTC")
            found = {group_by: await analytics_scan.check(period, Scope(), group_by) for group_by in ("agent", "team")}
            for group_by, differences in found.items():
                for figure, where in differences.items():
                    click.echo(f"{figure} per {group_by}: differs at {', '.join(where)}")
            if any(found.values()):
                click.echo("mqchat: the counters differ from the tickets; `mqchat desk-rollups --rebuild` with the desk stopped", err=True)
                sys.exit(1)
            click.echo(f"the counters agree with the tickets of the last {check_days} days")
            return
        tickets, ratings = await (rollups.rebuild() if rebuild else rollups.backfill())
        click.echo(f"counted {tickets} tickets and {ratings} ratings")

    _one_off(action)


@main.group("api-key")
def api_key() -> None:
    """Manage the platform backend's API keys (for /api/platform/*)."""


@api_key.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. the platform's order service.")
def api_key_create(name: str) -> None:
    """Create an API key; prints the key alone on stdout (it is shown only this once)."""
    import msgspec

    from core.payloads import ApiKeyRequest
    from core.services import audit
    from core.services.api_keys import create_api_key

    try:
        request = msgspec.convert({"name": name}, ApiKeyRequest)
    except msgspec.ValidationError as exc:
        click.echo(f"mqchat: {exc}", err=True)
        sys.exit(2)

    async def action(_: Settings) -> None:
        created = await create_api_key(request.name, created_by=audit.CLI_ACTOR)
        await audit.record(audit.CLI_ACTOR, "api_key.created", "api_key", created.id, name=created.name, prefix=created.prefix)
        click.echo(created.key)

    _one_off(action)


@api_key.command("list")
def api_key_list() -> None:
    """List API keys: id, first characters, name (never a secret)."""
    from core.services.api_keys import list_api_keys

    async def action(_: Settings) -> None:
        for key in await list_api_keys():
            click.echo(f"{key.id}  {key.prefix}...  {key.created_at}  {key.name}")

    _one_off(action)


@api_key.command("revoke")
@click.argument("key_id")
def api_key_revoke(key_id: str) -> None:
    """Revoke the API key with this id (refused from the next request on)."""
    from core.services import audit
    from core.services.api_keys import revoke_api_key

    async def action(_: Settings) -> None:
        await revoke_api_key(key_id)
        await audit.record(audit.CLI_ACTOR, "api_key.revoked", "api_key", key_id)

    _one_off(action)
