"""An example of LangGraph custom auth for a shared memalign-graph deployment: one API key per tenant.

With `"auth": {"path": "./deploy/auth.py:auth"}` in langgraph.json and `MEMALIGN_SERVED_NAMESPACES=@auth`
on the server, each caller works in the namespace named by their identity, and threads are tagged with
their owner, so a caller sees and runs only their own threads (memory threads included).

Keys come from `TENANT_API_KEYS` ("key-1:team-a,key-2:team-b"); use your identity provider in production.
"""

from __future__ import annotations

import os
from typing import Any

from langgraph_sdk import Auth

auth = Auth()


def _tenants() -> dict[str, str]:
    pairs = (item.split(":", 1) for item in os.environ.get("TENANT_API_KEYS", "").split(",") if ":" in item)
    return {key.strip(): tenant.strip() for key, tenant in pairs}


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> Auth.types.MinimalUserDict:
    key = headers.get(b"x-api-key", b"").decode()
    tenant = _tenants().get(key)
    if tenant is None:
        raise Auth.exceptions.HTTPException(status_code=401, detail="unknown API key")
    return {"identity": tenant}


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, str]:
    """Tag what a caller creates with their identity, and show them only what carries it."""
    metadata = value.setdefault("metadata", {}) if isinstance(value, dict) else {}
    if isinstance(metadata, dict):
        metadata["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}
