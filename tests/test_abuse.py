"""The web service under abuse, over real HTTP: spoofed proxies, slow clients, the Host header.

Each test drives a real `gradwalk serve` (uvicorn on a loopback port, the real sandbox) the way an
attacker would, and checks what must still hold for everybody else. Forged results, memory bombs
and fair queues are the sandbox's, in tests/sandbox/ (test_boundary.py, test_memory.py,
test_schedule.py); the throughput under abuse is scripts/bench_api.py.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


# ---- 4. the proxy setting that ships: X-Forwarded-For cannot dodge the rate limit -------------------


def shipped(setting: str, path: Path) -> str | None:
    """The value `path` (Dockerfile or compose.yaml) gives GRADWALK_<setting>, or None."""
    match = re.search(rf"^(?!\s*#).*?GRADWALK_{setting}[=:]\s*\"?([^\"\s]*)\"?", path.read_text(), flags=re.M)
    return match.group(1) if match else None


def _random_ip() -> str:
    return ".".join(str(random.randint(1, 254)) for _ in range(4))


@pytest.mark.slow
def test_behind_the_shipped_proxy_a_spoofed_forwarded_for_counts_as_the_client(serve: Any) -> None:
    trusted = shipped("FORWARDED_ALLOW_IPS", ROOT / "deploy" / "compose.yaml")
    assert trusted is not None
    # This test's loopback connection plays nginx, which appends the address it saw to what the client sent.
    server = serve(rate_limit_per_minute=3, forwarded_allow_ips=trusted if trusted != "127.0.0.1" else "127.0.0.1")
    body = {"source": "x = 1\n"}
    with httpx.Client(base_url=server.url, timeout=30) as http_:
        statuses = [
            http_.post("/api/trace", json=body, headers={"x-forwarded-for": f"{_random_ip()}, 198.51.100.7"}).status_code
            for _ in range(8)
        ]
        assert statuses[:3] == [200, 200, 200] and set(statuses[3:]) == {429}, statuses
        other = http_.post("/api/trace", json=body, headers={"x-forwarded-for": f"{_random_ip()}, 198.51.100.8"})
        assert other.status_code == 200  # another student behind the same proxy has a budget of their own
        garbage = http_.post("/api/trace", json=body, headers={"x-forwarded-for": "198.51.100.9, not-an-address"})
        assert garbage.status_code == 400 and garbage.json()["error"] == "bad_request"


def test_an_ipv6_client_cannot_dodge_the_rate_limit_by_changing_address(serve: Any) -> None:
    """An IPv6 subscriber is handed a whole /64 and may use any address in it: each address had a budget
    (and a run queue) of its own, so one client had as many as it liked. They are counted by /64 now."""
    server = serve(rate_limit_per_minute=2)  # this test's loopback connection plays the trusted proxy
    body = {"source": "x = 1\n"}
    with httpx.Client(base_url=server.url, timeout=30) as http_:
        statuses = [
            http_.post("/api/trace", json=body, headers={"x-forwarded-for": f"2001:db8:0:1::{i:x}"}).status_code
            for i in range(1, 5)
        ]
        assert statuses == [200, 200, 429, 429], statuses
        other = http_.post("/api/trace", json=body, headers={"x-forwarded-for": "2001:db8:0:2::1"})
        assert other.status_code == 200  # the next /64 is another subscriber
        mapped = [
            http_.post("/api/trace", json=body, headers={"x-forwarded-for": forwarded}).status_code
            for forwarded in ("198.51.100.20", "::ffff:198.51.100.20", "198.51.100.20")
        ]
        assert mapped == [200, 200, 429], mapped  # an IPv4 address written as IPv6 is that IPv4 client


@pytest.mark.slow
def test_without_a_proxy_the_shipped_image_ignores_forwarded_for(serve: Any) -> None:
    trusted = shipped("FORWARDED_ALLOW_IPS", ROOT / "Dockerfile")
    assert trusted in (None, "127.0.0.1"), "the image is reached directly: it must not trust X-Forwarded-For from anyone"
    server = serve(rate_limit_per_minute=3, **({"forwarded_allow_ips": trusted} if trusted else {}))
    direct = httpx.HTTPTransport(local_address="127.0.0.2")  # a client that is not the trusted proxy
    with httpx.Client(base_url=server.url, timeout=30, transport=direct) as http_:
        statuses = [
            http_.post("/api/trace", json={"source": "x = 1\n"}, headers={"x-forwarded-for": _random_ip()}).status_code
            for _ in range(6)
        ]
    assert statuses[:3] == [200, 200, 200] and set(statuses[3:]) == {429}, statuses


# ---- 5. slow clients --------------------------------------------------------------------------------


def _connect(port: int, source: str) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def _closed(s: socket.socket) -> bool:
    """The server has closed this connection (EOF or reset), or answers and closes it (a 408)."""
    s.setblocking(False)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


@contextlib.contextmanager
def _sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    try:
        yield held
    finally:
        for s in held:
            s.close()


@pytest.mark.slow
def test_trickling_clients_are_cut_off(serve: Any) -> None:
    server = serve(header_timeout_s=2, max_client_connections=20)
    with _sockets() as held:
        for _ in range(60):  # one address, 60 connections: 20 are kept, the rest closed at once
            held.append(_connect(server.port, "127.0.0.3"))
        time.sleep(0.5)
        assert sum(_closed(s) for s in held) >= 40
        open_ones = [s for s in held if not _closed(s)]
        assert 0 < len(open_ones) <= 20
        for s in open_ones:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow_body = _connect(server.port, "127.0.0.4")
        held.append(slow_body)
        slow_body.sendall(
            b"POST /api/trace HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        started = time.monotonic()
        while time.monotonic() - started < 3.5:  # a header (or body) byte every half second
            for s in [*open_ones, slow_body]:
                with contextlib.suppress(OSError):
                    s.send(b"a")
            time.sleep(0.5)
        assert all(_closed(s) for s in open_ones), "trickling header connections still held"
        assert _closed(slow_body), "a trickling body still held"
        with httpx.Client(base_url=server.url, timeout=10) as http_:
            assert http_.get("/api/health").status_code == 200  # everybody else is served


# ---- 6. the Host header -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosted(module_client: Any) -> Any:
    return module_client()


@pytest.fixture(scope="module")
def public(module_client: Any) -> Any:
    return module_client(public_url="https://gradwalk.example.org", allowed_hosts="gradwalk.example.org,127.0.0.1")


def test_share_links_never_reflect_the_host_header(hosted: Any) -> None:
    created = hosted.post("/api/share", json={"source": "x = 1\n"}, headers={"host": "evil.example"})
    assert created.status_code == 201
    links = created.json()
    assert links["url"] == f"/s/{links['id']}" and links["embed_url"] == f"/embed/{links['id']}"
    redirect = hosted.get("/api/health/", headers={"host": "evil.example"}, follow_redirects=False)
    assert redirect.status_code in (307, 308) and "evil" not in redirect.headers["location"]
    assert redirect.headers["location"] == "/api/health"


def test_public_url_makes_absolute_links_and_other_hosts_are_refused(public: Any) -> None:
    created = public.post("/api/share", json={"source": "x = 1\n"}, headers={"host": "gradwalk.example.org"})
    assert created.status_code == 201
    links = created.json()
    assert links["url"] == f"https://gradwalk.example.org/s/{links['id']}"
    assert links["embed_url"] == f"https://gradwalk.example.org/embed/{links['id']}"
    refused = public.get("/api/health", headers={"host": "evil.example"})
    assert refused.status_code == 400 and refused.json()["error"] == "bad_request"
