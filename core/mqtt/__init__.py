"""The MQTT transport of mqchat's own services: connections, fan-out, acknowledgements, Mosquitto's dynsec.

`internals` is the one module that reaches into aiomqtt's private parts.
"""

from core.mqtt.client import ServiceClient, service_client, service_password

__all__ = ["ServiceClient", "service_client", "service_password"]
