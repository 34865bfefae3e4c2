"""Settings: every limit of the service, with its unit in its name.

Read from environment variables prefixed `GRADWALK_` (and a `.env` file), or passed to
`create_app(settings)` directly. Each field's description is its documentation; a test checks
that every setting appears in README.md.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TraceLimits(BaseModel):
    """The tracer's own limits: what it records before truncating with a notice."""

    max_nodes: int = 20_000
    max_value_elements: int = 1_000
    max_stdout_bytes: int = 65_536
    max_events: int = 50_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADWALK_", env_file=".env", extra="ignore")

    # tracer
    max_nodes: int = Field(20_000, description="Graph nodes recorded before the trace is truncated.")
    max_value_elements: int = Field(1_000, description="Tensors with more elements carry stats instead of values.")
    max_stdout_bytes: int = Field(65_536, description="Program output kept in a trace, in bytes.")
    max_events: int = Field(50_000, description="Story events recorded before the trace is truncated.")
    # sandbox
    sandbox_mode: Literal["strict", "dev"] = Field(
        "dev", description="strict: refuse to start without every protection; dev: run with what the host allows."
    )
    timeout_s: float = Field(5.0, description="Wall-clock limit of one run, in seconds.")
    cpu_s: int = Field(5, description="CPU-time limit of one run, in seconds.")
    memory_mb: int = Field(1_536, description="Address-space limit of one run, in MiB (torch needs about 640).")
    max_processes: int = Field(64, description="Threads and processes one run may have.")
    max_result_bytes: int = Field(32 * 1024 * 1024, description="Largest trace a run may return, in bytes.")
    max_concurrent_runs: int = Field(os.cpu_count() or 1, description="Runs executing at once.")
    max_queued_runs: int = Field(64, description="Runs waiting for a slot before the API answers 429.")
    scratch_mb: int = Field(64, description="Private writable /tmp of one run (tmpfs), and its largest file, in MiB.")
    # web
    max_source_bytes: int = Field(65_536, description="Largest program (request body) accepted, in bytes.")
    rate_limit_per_minute: int = Field(120, description="Runs per client address per minute; 0 disables.")
    data_dir: str = Field("data", description="Directory for the default SQLite database.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the share store; default sqlite in data_dir (postgresql+psycopg://... scales out)."
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxy addresses (comma-separated, * for any) trusted to set X-Forwarded-For, the client address that rate limits count.",
    )

    def trace_limits(self) -> TraceLimits:
        return TraceLimits(
            max_nodes=self.max_nodes,
            max_value_elements=self.max_value_elements,
            max_stdout_bytes=self.max_stdout_bytes,
            max_events=self.max_events,
        )
