"""Connections that hold the server without asking anything: cut off below HTTP, in uvicorn's protocol.

A client must send a request's headers within `header_timeout_s` of connecting (or of its previous
answer), and its body at `min_body_bytes_per_s` or faster (after `header_timeout_s` of grace); one
address may hold `max_client_connections` connections at once (trusted proxies, which carry many
clients, are not counted). uvicorn only closes idle keep-alive connections, and any byte restarts
that clock, so a client sending a header byte a second would hold its connection forever. `gradwalk
serve` runs uvicorn with `GuardedH11Protocol`; the settings come from the environment, as the app's do.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import Settings
from .middleware import TrustedProxies


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float
    min_body_bytes_per_s: int
    max_body_bytes: int
    max_client_connections: int
    proxies: TrustedProxies

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout_s=settings.header_timeout_s,
            min_body_bytes_per_s=settings.min_body_bytes_per_s,
            max_body_bytes=settings.max_body_bytes,
            max_client_connections=settings.max_client_connections,
            proxies=TrustedProxies(settings.forwarded_allow_ips),
        )


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers and body, and a cap per address."""

    limits: ConnectionLimits | None = None  # from Settings() at the first connection (in each worker)
    open_per_client: collections.Counter[str] = collections.Counter()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if GuardedH11Protocol.limits is None:
            GuardedH11Protocol.limits = ConnectionLimits.from_settings(Settings())
        self._deadline: asyncio.TimerHandle | None = None
        self._counted: str | None = None
        self._body_cycle: object = None  # the request whose body has a deadline

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own: an asyncio.Protocol is typed for any BaseTransport
        super().connection_made(transport)
        limits = self.limits
        assert limits is not None
        address = self.client[0] if self.client else None
        if address is not None and not limits.proxies.trusts(address):
            if self.open_per_client[address] >= limits.max_client_connections:
                transport.abort()  # no answer: answering would cost what the cap saves
                return
            self.open_per_client[address] += 1
            self._counted = address
        self._arm(limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            self.open_per_client[self._counted] -= 1
            if self.open_per_client[self._counted] <= 0:
                del self.open_per_client[self._counted]
            self._counted = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is None or cycle.response_complete or self.transport.is_closing():
            return
        if not cycle.more_body:  # the whole request is in: the app's time is the app's
            self._disarm()
        elif self._body_cycle is not cycle:  # its headers just arrived: now the body has a deadline
            self._body_cycle = cycle
            assert self.limits is not None
            length = dict(self.headers).get(b"content-length", b"")
            declared = int(length) if length.isdigit() else self.limits.max_body_bytes
            self._arm(self.limits.header_timeout_s + declared / self.limits.min_body_bytes_per_s)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.limits is not None:
            self._arm(self.limits.header_timeout_s)  # the next request's headers

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        waiting_for_head = self.conn.their_state in (h11.IDLE, h11.DONE) and (self.cycle is None or self.cycle.response_complete)
        if waiting_for_head or (self.cycle is not None and self.cycle.more_body):
            self.transport.close()
