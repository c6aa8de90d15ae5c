"""`/api/admin/api-keys`: keys of the host platform's backend for the server API (admin only)."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from core.documents import User
from core.payloads import ApiKeyCreated, ApiKeyList, ApiKeyRequest
from core.services import api_keys, audit


class ApiKeysController(Controller):
    path = "/api/admin/api-keys"
    tags = ["admin", "platform"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[ApiKeyRequest], current_user: NamedDependency[User]) -> ApiKeyCreated:
        """A new key for `/api/platform/*`; its secret `key` is in this answer only."""
        created = await api_keys.create_api_key(data.name, created_by=str(current_user.id))
        await audit.record(str(current_user.id), "api_key.created", "api_key", created.id, name=created.name, prefix=created.prefix)
        return created

    @get("/")
    async def list_keys(self) -> ApiKeyList:
        """Every key (name, first characters, creation), never a secret."""
        return ApiKeyList(items=await api_keys.list_api_keys())

    @delete("/{key_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def revoke(self, key_id: FromPath[str], current_user: NamedDependency[User]) -> None:
        """Revoke a key: refused from the next request on."""
        await api_keys.revoke_api_key(key_id)
        await audit.record(str(current_user.id), "api_key.revoked", "api_key", key_id)
