"""`gradwalk serve` as real processes on loopback ports: durability under SIGKILL, scale-out on PostgreSQL.

Also the deployment files (Dockerfile, deploy/compose.yaml) say what the issue promises.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "import torch\nw = torch.tensor(2.0, requires_grad=True)\nloss = (w * 3) ** 2\nloss.backward()\nprint(w.grad)\n"


@pytest.mark.slow
def test_an_acknowledged_share_survives_sigkill(serve: Any) -> None:
    server = serve()
    ids: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for i in range(3):
            created = http.post("/api/share", json={"source": SOURCE, "title": f"take {i}"})
            assert created.status_code == 201
            ids.append(created.json()["id"])
        server.kill()  # SIGKILL the moment the last 201 is in our hands: no shutdown, no flush
    assert server.proc is not None and server.proc.returncode == -9

    restarted = serve()  # same data dir, fresh process
    with httpx.Client(base_url=restarted.url, timeout=30) as http:
        for i, share_id in enumerate(ids):
            got = http.get(f"/api/share/{share_id}")
            assert got.status_code == 200, got.text
            assert got.json()["title"] == f"take {i}" and got.json()["source"] == SOURCE
            assert got.json()["trace"]["status"] == "ok"


@pytest.mark.slow
def test_two_servers_on_one_postgresql_serve_each_others_shares(serve: Any, postgres: Any) -> None:
    url = postgres.create_database()
    a, b = serve(database_url=url), serve(database_url=url)
    assert a.port != b.port
    with httpx.Client(timeout=30) as http:
        assert http.get(a.url + "/api/health").json()["database"] == "postgresql"
        created = http.post(a.url + "/api/share", json={"source": SOURCE, "title": "from A"})
        assert created.status_code == 201
        share_id = created.json()["id"]
        got = http.get(f"{b.url}/api/share/{share_id}")
        assert got.status_code == 200 and got.json()["title"] == "from A"
        page = http.get(f"{b.url}/s/{share_id}")
        assert page.status_code == 200 and share_id in page.text
        # and the other way round
        back = http.post(b.url + "/api/share", json={"source": "x = 1\n"}).json()["id"]
        assert http.get(f"{a.url}/api/share/{back}").status_code == 200


@pytest.mark.slow
def test_two_servers_on_one_postgresql_share_each_clients_run_budget(serve: Any, postgres: Any) -> None:
    url = postgres.create_database()
    a, b = (serve(database_url=url, rate_limit_per_minute=3, forwarded_allow_ips="127.0.0.1") for _ in range(2))
    student = {"x-forwarded-for": "203.0.113.9"}
    with httpx.Client(timeout=30) as http:

        def post(server: Any, headers: dict[str, str] = student) -> httpx.Response:
            return http.post(server.url + "/api/trace", json={"source": "x = 1\n"}, headers=headers)

        assert [post(s).status_code for s in (a, b, a)] == [200, 200, 200]  # three runs, two servers
        refused = post(b)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 20
        assert refused.json()["error"] == "rate_limited"
        assert post(a, {"x-forwarded-for": "203.0.113.10"}).status_code == 200  # another student


@pytest.mark.slow
def test_workers_option_and_json_access_log(serve: Any) -> None:
    server = serve(workers=2)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(4):
            assert http.get("/api/health", headers={"x-request-id": "serve-log-1"}).status_code == 200
        assert http.post("/api/trace", json={"source": "print(40 + 2)"}).json()["stdout"] == "42\n"
    server.stop()
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "serve-log-1"]
    assert len(mine) == 4 and all(line["path"] == "/api/health" and line["status"] == 200 for line in mine)


@pytest.mark.slow
def test_rate_limit_counts_the_client_behind_a_trusted_proxy(serve: Any) -> None:
    server = serve(rate_limit_per_minute=1, forwarded_allow_ips="127.0.0.1")
    body = {"source": "x = 1\n"}
    with httpx.Client(base_url=server.url, timeout=30) as http:

        def post(client_address: str) -> httpx.Response:
            return http.post("/api/trace", json=body, headers={"x-forwarded-for": client_address})

        assert post("203.0.113.7").status_code == 200
        refused = post("203.0.113.7")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert post("203.0.113.8").status_code == 200  # another student behind the same proxy


def test_serve_help_lists_its_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers"):
        assert option in result.stdout


# ---- deployment files ------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_strict_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.M | re.I)
    assert len(stages) >= 2 and any("node" in image for image, _ in stages) and any("python" in image for image, _ in stages)
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", text, flags=re.M)
    assert re.search(r"^HEALTHCHECK\b.*?/api/health", text, flags=re.M | re.S)
    assert "GRADWALK_SANDBOX_MODE=strict" in text
    assert re.search(r"torch==2\.13\.0", text) and "cpu" in text
    assert re.search(r"gradwalk\W+serve", text)


def test_compose_runs_replicas_behind_a_proxy_with_one_postgresql() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    assert re.search(r"replicas:\s*\$\{[A-Z_]+:-\d+\}|replicas:\s*\d+", text)
    assert "postgresql+psycopg://" in text and re.search(r"image:\s*postgres", text)
    assert re.search(r"image:\s*(nginx|caddy|haproxy|traefik)", text)
    assert "GRADWALK_DATABASE_URL" in text
