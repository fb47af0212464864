"""Where a request comes from (proxy-aware address, user agent): a light dependency for any router."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shared.http.client_ip import ClientIp


@dataclass(frozen=True)
class ClientMeta:
    """Where a request comes from, for sessions, audit records and notices."""

    ip: str | None
    user_agent: str | None


async def client_meta(request: Request, ip: ClientIp) -> ClientMeta:
    """The caller's address (proxy-aware) and browser, for sessions and the audit log."""
    agent = request.headers.get("user-agent")
    return ClientMeta(ip=ip, user_agent=agent[:512] if agent else None)


Meta = Annotated[ClientMeta, Depends(client_meta)]
