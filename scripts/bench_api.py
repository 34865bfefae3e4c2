"""Benchmark the API over HTTP against a real `gradwalk serve` (not a timed test).

Prints p50/p95 latency of POST /api/trace for each seed program (one client, sequential), then
sustained throughput with 16 and 64 concurrent clients, each next to `GET /api/health` measured
the same way in the same run: the floor of the HTTP stack, so the ratio is what a run costs.
Targets on the 2-core reference machine: p50 <= 15 ms, >= 100 traces/s at 16 clients, no 5xx at 64
(429 with Retry-After is the right answer to overload).

    .venv/bin/python scripts/bench_api.py [--url http://127.0.0.1:8000] [--duration-s 5] [--requests 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "app" / "examples").glob("seed_*.py"))
P50_TARGET_MS = 15.0
THROUGHPUT_TARGET_PER_S = 100.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_server(workers: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="gradwalk-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADWALK_")}
    env.update(GRADWALK_DATA_DIR=str(workdir / "data"), GRADWALK_RATE_LIMIT_PER_MINUTE="0")
    script = Path(sys.executable).parent / "gradwalk"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", str(workers)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
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


def sequential(client: httpx.Client, method: str, path: str, body: dict | None, n: int) -> list[float]:
    """Latencies in ms of n requests, one after another (all must succeed)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.request(method, path, json=body)
        out.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            sys.exit(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return out


async def load(url: str, clients: int, duration_s: float, requests: list[tuple[str, str, dict | None]]) -> dict:
    """`clients` concurrent loops for `duration_s`; completed requests per second and statuses."""
    statuses: collections.Counter[int | str] = collections.Counter()
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        stop = time.perf_counter() + duration_s

        async def loop(k: int) -> None:
            i = k
            while time.perf_counter() < stop:
                method, path, body = requests[i % len(requests)]
                i += 1
                t0 = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                    statuses[response.status_code] += 1
                    if response.status_code == 429:
                        assert response.headers.get("retry-after"), "429 without Retry-After"
                except httpx.HTTPError as e:
                    statuses[type(e).__name__] += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(loop(k) for k in range(clients)))
        elapsed = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    return {
        "per_s": ok / elapsed,
        "statuses": dict(statuses),
        "p50": percentile(latencies, 0.5) if latencies else float("nan"),
        "p95": percentile(latencies, 0.95) if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the started server")
    parser.add_argument("--requests", type=int, default=60, help="sequential requests per latency row")
    parser.add_argument("--duration-s", type=float, default=5.0, help="seconds per throughput row")
    args = parser.parse_args()

    proc = None
    url = args.url
    if url is None:
        proc, url, workdir = start_server(args.workers)
        print(f"server: gradwalk serve --workers {args.workers} ({url}, log in {workdir})")
    try:
        seeds = [(p.stem, {"source": p.read_text()}) for p in SEEDS]
        with httpx.Client(base_url=url, timeout=60) as client:
            health = client.get("/api/health").json()
            print(f"sandbox: mode={health['sandbox_mode']} protections on: "
                  f"{sum(health['protections'].values())}/{len(health['protections'])}; cpus: {os.cpu_count()}")
            for _, body in seeds:  # warm-up: zygote children, the store, connection pools
                sequential(client, "POST", "/api/trace", body, 3)
            sequential(client, "GET", "/api/health", None, 20)

            print(f"\nlatency, 1 client, {args.requests} sequential requests each (ms)")
            print(f"{'request':34} {'p50':>8} {'p95':>8} {'p50 / floor':>12}")
            floor = sequential(client, "GET", "/api/health", None, args.requests)
            floor_p50 = percentile(floor, 0.5)
            print(f"{'GET /api/health (floor)':34} {floor_p50:8.2f} {percentile(floor, 0.95):8.2f} {1.0:12.1f}")
            all_p50 = []
            for name, body in seeds:
                lat = sequential(client, "POST", "/api/trace", body, args.requests)
                p50 = percentile(lat, 0.5)
                all_p50.append(p50)
                print(f"{'POST /api/trace ' + name:34} {p50:8.2f} {percentile(lat, 0.95):8.2f} {p50 / floor_p50:12.1f}")
            worst = max(all_p50)
            print(f"worst seed p50 {worst:.2f} ms (target <= {P50_TARGET_MS:.0f} ms): "
                  f"{'met' if worst <= P50_TARGET_MS else 'MISSED'}")

        print(f"\nthroughput, {args.duration_s:.0f} s per row (completed 200s per second)")
        print(f"{'clients':>7} {'request':26} {'per s':>9} {'p50 ms':>8} {'p95 ms':>8} {'vs floor':>9}  statuses")
        traces = [("POST", "/api/trace", body) for _, body in seeds]
        verdicts = []
        for clients in (16, 64):
            base = asyncio.run(load(url, clients, args.duration_s, [("GET", "/api/health", None)]))
            run = asyncio.run(load(url, clients, args.duration_s, traces))
            for label, r in (("GET /api/health (floor)", base), ("POST /api/trace (seeds)", run)):
                ratio = r["per_s"] / base["per_s"] if base["per_s"] else float("nan")
                print(f"{clients:7d} {label:26} {r['per_s']:9.1f} {r['p50']:8.1f} {r['p95']:8.1f} {ratio:9.2f}  {r['statuses']}")
            server_errors = sum(n for s, n in run["statuses"].items() if isinstance(s, str) or s >= 500)
            if clients == 16:
                verdicts.append(f"{run['per_s']:.0f} traces/s at 16 clients (target >= {THROUGHPUT_TARGET_PER_S:.0f}): "
                                f"{'met' if run['per_s'] >= THROUGHPUT_TARGET_PER_S else 'MISSED'}")
            verdicts.append(f"{clients} clients: {server_errors} 5xx or transport errors "
                            f"({'met' if server_errors == 0 else 'MISSED'}), {run['statuses'].get(429, 0)} answered 429")
        print()
        for line in verdicts:
            print(line)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            try:
                os.killpg(proc.pid, 9)  # the sandbox's processes, if any outlived the server
            except ProcessLookupError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
