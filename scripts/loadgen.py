"""The load generator of scripts/bench_api.py and what it measures: a `gradwalk serve` of its own, a
keep-alive HTTP/1.1 client cheaper than the server it loads, sequential and concurrent request series,
Server-Timing, and the CPU a process tree and the whole machine spent."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx


def tree_cpu_s(root: int) -> float:
    """CPU seconds of a process and all its descendants, living or reaped (a process's cutime holds the
    children it waited for: the sandbox's zygote reaps every run)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(d.name)] = int(fields[1])
        cpu[int(d.name)] = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier and p not in tree]
        tree.update(frontier)
    return sum(cpu.get(p, 0.0) for p in tree)


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all processes: ours, the other engineers')."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_server(workers: int, **settings: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`gradwalk serve` on a free port, with GRADWALK_* `settings` besides the benchmark's own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="gradwalk-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADWALK_")}
    env.update(GRADWALK_DATA_DIR=str(workdir / "data"), GRADWALK_RATE_LIMIT_PER_MINUTE="0")
    env.update({f"GRADWALK_{k.upper()}": v for k, v in settings.items()})
    script = Path(sys.executable).parent / "gradwalk"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", str(workers)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited: {(workdir / 'server.log').read_text()}")
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url, workdir
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("server did not start")


def server_timing(header: str) -> dict[str, float]:
    """`sandbox;dur=12.3, app;dur=13.0` -> {"sandbox": 12.3, "app": 13.0} (ms)."""
    out = {}
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if params.strip().startswith("dur="):
            out[name.strip()] = float(params.strip()[4:])
    return out


def sequential(url: str, method: str, path: str, body: dict | None, n: int) -> tuple[list[float], list[dict[str, float]]]:
    """Latencies in ms of n requests, one after another on one keep-alive connection (all must be 200),
    with each response's Server-Timing."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    raw = raw_request(host, port, method, path, body)

    async def go() -> tuple[list[float], list[dict[str, float]]]:
        conn, out, timings = Connection(host, port), [], []
        try:
            for _ in range(n):
                t0 = time.perf_counter()
                status, headers = await conn.request(raw)
                out.append((time.perf_counter() - t0) * 1000)
                timings.append(server_timing(headers.get("server-timing", "")))
                if status != 200:
                    sys.exit(f"{method} {path}: {status}")
        finally:
            await conn.close()
        return out, timings

    return asyncio.run(go())


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator shares the 2 cores
    with the server, so it must cost far less per request than the server does (httpx costs about as
    much as the server's floor)."""

    def __init__(self, host: str, port: int, source: str | None = None) -> None:
        self.host, self.port, self.source = host, port, source
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.body = b""

    async def request(self, raw: bytes) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            local = (self.source, 0) if self.source else None
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=local)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for name, _, value in (line.partition(":") for line in lines[1:] if line):
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        self.body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def raw_request(host: str, port: int, method: str, path: str, body: dict | None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode() + payload


async def load(url: str, clients: int, duration_s: float, requests: list[tuple[str, str, dict | None]]) -> dict:
    """`clients` concurrent keep-alive connections for `duration_s`; completed 200s per second and statuses."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    raws = [raw_request(host, port, m, p, b) for m, p, b in requests]
    statuses: collections.Counter[int | str] = collections.Counter()
    latencies: list[float] = []
    stop = time.perf_counter() + duration_s

    async def loop(k: int) -> None:
        conn = Connection(host, port)
        i = k
        try:
            while time.perf_counter() < stop:
                raw = raws[i % len(raws)]
                i += 1
                t0 = time.perf_counter()
                try:
                    status, headers = await conn.request(raw)
                    statuses[status] += 1
                    if status == 429 and not headers.get("retry-after"):
                        statuses["429 without Retry-After"] += 1
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    statuses[type(e).__name__] += 1
                    await conn.close()
                latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(k) for k in range(clients)))
    elapsed = time.perf_counter() - t0
    return {
        "per_s": statuses.get(200, 0) / elapsed,
        "statuses": dict(statuses),
        "p50": percentile(latencies, 0.5) if latencies else float("nan"),
        "p95": percentile(latencies, 0.95) if latencies else float("nan"),
    }
