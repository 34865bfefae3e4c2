"""Settings: every limit of the service, with its unit in its name.

Read from environment variables prefixed `GRADWALK_` (and a `.env` file), or passed to
`create_app(settings)` directly. Each field's description is its documentation; a test checks
that every setting appears in README.md.

The tracer's and the sandbox's settings are sections of their own, `Settings.trace` and
`Settings.sandbox`, which those parts take as they are; their variables keep flat names
(`GRADWALK_MAX_NODES` is `trace.max_nodes`), so a setting's name is the same everywhere.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# torch's threads while a program runs: reductions split their work by thread, so the last digits
# of a sum depend on how many there are; one everywhere (sandbox, CLI, notebook), so that one
# program prints one thing.
THREADS = 1


class TraceSettings(BaseModel):
    """The tracer's limits: what it records before truncating the trace with a notice."""

    model_config = ConfigDict(extra="forbid")

    max_nodes: int = Field(20_000, description="Graph nodes recorded before the trace is truncated.")
    max_value_elements: int = Field(1_000, description="Tensors with more elements carry stats instead of values.")
    max_stdout_bytes: int = Field(65_536, description="Program output kept in a trace, in bytes.")
    max_events: int = Field(50_000, description="Story events recorded before the trace is truncated.")
    max_steps: int = Field(200_000, description="Backward steps recorded, over all passes, before the trace is truncated.")
    max_trace_bytes: int = Field(
        3_400_000,
        description="A trace's size in bytes past which its least useful tensor values are replaced by their stats (with a notice).",
    )


class SandboxSettings(BaseModel):
    """The sandbox's limits: of one run, and of the runs together."""

    model_config = ConfigDict(extra="forbid")

    sandbox_mode: Literal["strict", "dev"] = Field(
        "dev", description="strict: refuse to start without every protection; dev: run with what the host allows."
    )
    timeout_s: float = Field(5.0, description="Wall-clock limit of one run, in seconds.")
    cpu_s: int = Field(5, description="CPU-time limit of one run, in seconds.")
    memory_mb: int = Field(1_536, description="Address-space limit of one run, in MiB (torch needs about 640).")
    max_processes: int = Field(64, description="Threads and processes one run may have.")
    max_result_bytes: int = Field(32 * 1024 * 1024, description="Largest trace a run may return, in bytes.")
    max_concurrent_runs: int = Field(os.cpu_count() or 1, description="Runs executing at once at full CPU priority.")
    max_background_runs: int = Field(
        4 * (os.cpu_count() or 1),
        description="Runs that may go on at idle CPU priority besides them: long runs, and busy clients' runs.",
    )
    demote_after_s: float = Field(
        0.5,
        description="A run still going after this many seconds gives its slot to the next client and goes on in the background.",
    )
    busy_client_s: float = Field(
        3.0,
        description="Seconds of running lately (half-life 30 s) past which a client's runs go behind others', in the background.",
    )
    max_queued_runs: int = Field(64, description="Runs waiting for a slot before the API answers 429.")
    max_client_queued_runs: int = Field(16, description="Runs one client may have waiting before it is answered 429.")
    scratch_mb: int = Field(64, description="Private writable /tmp of one run (tmpfs), and its largest file, in MiB.")
    share_identical_runs: bool = Field(
        True,
        description="Requests for the same program (and job) while an identical one is queued or running get that run's trace "
        "instead of a run of their own; nothing is kept once it ends.",
    )


class CheckSettings(BaseModel):
    """The numeric check's bounds (POST /api/check); its time is the run's own (timeout_s)."""

    model_config = ConfigDict(extra="forbid")

    max_check_elements: int = Field(
        2_000, description="Leaf elements one check nudges at most (each costs two runs of the program up to its pass)."
    )


SECTIONS: dict[str, type[BaseModel]] = {"trace": TraceSettings, "sandbox": SandboxSettings, "check": CheckSettings}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADWALK_", env_file=".env", extra="ignore")

    trace: TraceSettings = Field(default_factory=TraceSettings, description="The tracer's limits.")
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings, description="The sandbox's limits.")
    check: CheckSettings = Field(default_factory=CheckSettings, description="The numeric check's bounds.")
    # web
    max_source_bytes: int = Field(
        65_536, description="Largest program accepted, in bytes of UTF-8 (the program itself, not its JSON escaping)."
    )
    rate_limit_per_minute: int = Field(120, description="Runs per client address per minute; 0 disables.")
    data_dir: str = Field("data", description="Directory for the default SQLite database.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the share store; default sqlite in data_dir (postgresql+psycopg://... scales out)."
    )
    max_share_bytes: int = Field(
        32 * 1024 * 1024,
        description="Largest trace a share may hold, in bytes of JSON (stored compressed); larger ones are a 413.",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description=(
            "Proxies (addresses or networks, comma-separated) trusted to say who the client is in X-Forwarded-For: the "
            "client is the rightmost address there that is not one of them. * trusts any peer as the one proxy in front "
            "(only where nothing else can reach the app). The client's address keys its rate limit, queue and connections."
        ),
    )
    public_url: str | None = Field(
        None,
        description="The app's public address (https://gradwalk.example.org) for absolute share links; default: relative links.",
    )
    allowed_hosts: str = Field(
        "*", description="Host names the app answers for (comma-separated); other Host headers get 400. * allows any."
    )
    header_timeout_s: float = Field(10.0, description="Seconds a connection has to send a request's headers before it is closed.")
    min_body_bytes_per_s: int = Field(
        4096, description="Slowest a request body may arrive, in bytes per second (after header_timeout_s of grace)."
    )
    max_client_connections: int = Field(
        64, description="Connections one client address may hold open at once (trusted proxies excepted)."
    )

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: a program of max_source_bytes with every character JSON-escaped (\\uXXXX,
        6 bytes each), and 4 KiB for the rest of the request."""
        return 6 * self.max_source_bytes + 4096

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        """`Settings(timeout_s=2.0)` is `Settings(sandbox={"timeout_s": 2.0})`: flat names work as keywords too."""
        if not isinstance(data, dict):
            return data
        for section, model in SECTIONS.items():
            flat = {name: data.pop(name) for name in list(data) if name in model.model_fields}
            if flat:
                given = data.get(section) or {}
                data[section] = {**(given.model_dump() if isinstance(given, BaseModel) else given), **flat}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """As pydantic-settings' own order (arguments, environment, .env), the sections' variables beside each."""
        assert isinstance(env_settings, EnvSettingsSource) and isinstance(dotenv_settings, EnvSettingsSource)
        return (
            init_settings,
            env_settings,
            _FlatSections(settings_cls, env_settings),
            dotenv_settings,
            _FlatSections(settings_cls, dotenv_settings),
            file_secret_settings,
        )


def fields() -> dict[str, FieldInfo]:
    """Every setting by its flat name (the variable's, less GRADWALK_), sections' fields included."""
    out: dict[str, FieldInfo] = {}
    for name, field in Settings.model_fields.items():
        section = SECTIONS.get(name)
        out.update(section.model_fields if section is not None else {name: field})
    return out


class _FlatSections(PydanticBaseSettingsSource):
    """The sections' fields from their flat variables in `source` (the environment or .env)."""

    def __init__(self, settings_cls: type[BaseSettings], source: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        source, out = self.source, {}
        for section, model in SECTIONS.items():
            values = {}
            for name in model.model_fields:
                key = source.env_prefix + name
                value = source.env_vars.get(key if source.case_sensitive else key.lower())
                if value is not None:
                    values[name] = value
            if values:
                out[section] = values
        return out
