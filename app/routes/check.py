"""POST /api/check: a program's trace with every backward pass's gradients checked by nudging."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator

from ..models import Trace
from .api import _errors, _json, _text
from .deps import PROGRAM_BODY_DOC, ClientDep, PoolDep, ProgramRoute, SettingsDep, rate_limit, trace_document
from .whatif import Overrides, job, refuse_rejected

# ProgramRoute: max_source_bytes holds here too (a 200 kB program was checked), and a text body is the program
router = APIRouter(prefix="/api", tags=["api"], route_class=ProgramRoute)


class CheckRequest(BaseModel):
    source: str = Field(description="the Python program to run, trace and check")
    overrides: Overrides

    _check_source = field_validator("source")(_text)


@router.post(
    "/check",
    response_model=Trace,
    dependencies=[Depends(rate_limit)],
    responses=_errors(400, 403, 413, 415, 422, 429, 503),
    summary="Run a program in the sandbox; its trace, with each leaf gradient beside its estimate by nudging (`check`)",
    openapi_extra=PROGRAM_BODY_DOC,
)
async def check(request: Request, body: CheckRequest, pool: PoolDep, client: ClientDep, settings: SettingsDep) -> Response:
    """The program runs again in float64 once per nudged element, within the run's time limit; `check`
    says per pass and per leaf what autograd and the nudges found, and what was left out and why."""
    started = time.perf_counter()
    asked = job(body.overrides, check=True, check_max_elements=settings.check.max_check_elements)
    document = await trace_document(pool, body.source, client, asked)
    refuse_rejected(document, body.overrides)
    response = await _json(request, document.json)
    response.headers["server-timing"] = f"sandbox;dur={(time.perf_counter() - started) * 1000:.2f}"
    return response
