"""Signing users in: access tokens and the `mqtt` connection block of the login response."""

from __future__ import annotations

from core.documents import User
from core.payloads import AuthResponse, MqttConnectInfo
from core.security import broker_password, issue_token
from core.services.users import user_out
from core.settings import Settings


def mqtt_connect_info(settings: Settings, user_id: str, access_token: str) -> MqttConnectInfo:
    """How `user_id` connects to the broker configured in `settings`.

    The embedded broker takes the access token as password; an external broker
    (Mosquitto) takes the user's derived broker password, provisioned at login.
    """
    external = settings.broker == "external"
    return MqttConnectInfo(
        host=settings.public_host,
        port=settings.external_mqtt_port if external else settings.mqtt_port,
        ws_url=f"ws://{settings.public_host}:{settings.ws_port}/mqtt",
        username=user_id,
        password=broker_password(settings.jwt_secret, user_id) if external else access_token,
        client_id_prefix=user_id,
    )


def start_session(settings: Settings, user: User) -> AuthResponse:
    """Issue an access token for `user` and say how to reach the broker with it."""
    user_id = str(user.id)
    token = issue_token(user_id, settings.jwt_secret, settings.access_token_ttl)
    return AuthResponse(
        user=user_out(user, viewer=user),
        access_token=token,
        expires_in=settings.access_token_ttl,
        mqtt=mqtt_connect_info(settings, user_id, token),
    )
