"""The client's IP: ``X-Forwarded-For`` is trusted through ``TRUSTED_PROXY_COUNT`` hops only.

With N trusted proxies, each appends the address it saw, so the right-most N entries were written
by our proxies and the N-th from the right is the client as our outermost proxy saw it. Anything
to its left was written by the client and is ignored. Malformed values fall back to the socket
address, so a client can never choose its own key.
"""

from __future__ import annotations

import ipaddress

from flask import Flask, g, request

from app.state import Slot

TRUSTED_PROXIES: Slot[int] = Slot("trusted_proxy_count")  # TRUSTED_PROXY_COUNT, parsed once


def _parse_ip(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(remote_addr: str | None, forwarded_for: list[str], trusted: int) -> str:
    if trusted <= 0 and remote_addr:
        return remote_addr  # the server's own peer address: already a valid IP
    socket_ip = _parse_ip(remote_addr or "") or "0.0.0.0"  # noqa: S104 - a key, not a bind address
    if trusted <= 0:
        return socket_ip
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    if len(hops) < trusted:
        return socket_ip
    return _parse_ip(hops[-trusted]) or socket_ip


def init_client_ip(app: Flask) -> None:
    TRUSTED_PROXIES.set(app, int(app.config["TRUSTED_PROXY_COUNT"]))


def request_client_ip() -> str:
    """This request's client IP, worked out on first use (most requests never ask)."""
    ip: str | None = g.get("client_ip")
    if ip is None:
        ip = g.client_ip = client_ip(
            request.remote_addr,
            request.headers.getlist("X-Forwarded-For"),
            TRUSTED_PROXIES.get(),
        )
    return ip
