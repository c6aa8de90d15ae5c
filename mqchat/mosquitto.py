"""`mqchat mosquitto`: Debian's Mosquitto 2.0 with the shipped mosquitto.conf, provisioned for mqchat.

The shipped config is rewritten for this machine (ports from MQCHAT_MQTT_PORT /
MQCHAT_WS_PORT, files under `<data dir>/mosquitto/`, run as the current user),
the dynamic-security file is created on first start with the `mqchat-admin`
account, and the static roles and service accounts are provisioned.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import re
import shutil
from pathlib import Path

from core.broker_rights import bootstrap_commands
from core.mqtt.dynsec import DynsecClient
from core.security import BROKER_ADMIN, broker_password
from core.settings import Settings
from mqchat.children import die_with_parent
from mqchat.net import port_open

log = logging.getLogger("mqchat.mosquitto")

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "mosquitto.conf"
START_TIMEOUT = 20.0


class MosquittoError(RuntimeError):
    """Mosquitto could not be prepared or started."""


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise MosquittoError(f"{name} not found: apt-get install mosquitto mosquitto-clients")
    return found


def runtime_config(settings: Settings, shipped: Path = SHIPPED_CONFIG) -> str:
    """The shipped config with this deployment's ports, files and user."""
    home = settings.data_dir / "mosquitto"
    replacements = {
        r"^listener 1883\b.*$": f"listener {settings.mqtt_port} {settings.bind_host}",
        r"^listener 9001\b.*$": f"listener {settings.ws_port} {settings.bind_host}",
        r"^plugin_opt_config_file .*$": f"plugin_opt_config_file {home / 'dynamic-security.json'}",
        r"^persistence_location .*$": f"persistence_location {home}/",
    }
    text = shipped.read_text()
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text, flags=re.MULTILINE)
        if count != 1:
            raise MosquittoError(f"{shipped} has no single line matching {pattern!r}")
    return f"{text}\n# added by mqchat mosquitto: keep the current user (the data dir is theirs)\nuser {getpass.getuser()}\n"


async def run_mosquitto(settings: Settings, stop: asyncio.Event) -> int:
    """Prepare, start and provision Mosquitto; stop it (it saves its persistence) when `stop` is set."""
    home = settings.data_dir / "mosquitto"
    home.mkdir(parents=True, exist_ok=True)
    dynsec_file = home / "dynamic-security.json"
    if not dynsec_file.exists():
        init = await asyncio.create_subprocess_exec(
            _binary("mosquitto_ctrl"), "dynsec", "init", str(dynsec_file), BROKER_ADMIN,
            broker_password(settings.jwt_secret, BROKER_ADMIN), stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        if await init.wait() != 0:
            raise MosquittoError("mosquitto_ctrl dynsec init failed")
    config = home / "mosquitto.conf"
    config.write_text(runtime_config(settings))
    process = await asyncio.create_subprocess_exec(_binary("mosquitto"), "-c", str(config), preexec_fn=die_with_parent)
    try:
        host = settings.local_host
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not await port_open(host, settings.mqtt_port):
            if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise MosquittoError(f"mosquitto did not start (exit code {process.returncode})")
            await asyncio.sleep(0.1)
        dynsec = DynsecClient(settings.with_broker("external", settings.mqtt_port))
        await dynsec.run(bootstrap_commands(settings.jwt_secret))
        await dynsec.close()
        log.info("mosquitto.ready", extra={"mqtt_port": settings.mqtt_port, "ws_port": settings.ws_port})
        waiting = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        return 0 if stop.is_set() else 1
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        log.info("mosquitto.stopped", extra={"returncode": process.returncode})
