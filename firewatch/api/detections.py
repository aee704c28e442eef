"""POST /v1/detections: a JSON array or JSON lines of detections, validated as the workers do,
the accepted ones to the engine or the detections topic (ingest.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import TypeAdapter

from firewatch.api.auth import Principal, require
from firewatch.api.deps import ClockDep, IntakeDep, State
from firewatch.api.errors import AUTH, responses
from firewatch.api.ingest import JSON, JSONL, BodyError, MediaTypeError, split_body
from firewatch.api.schemas import IngestOut, RejectOut
from firewatch.model import Detection

router = APIRouter(prefix="/v1/detections", tags=["detections"])

Ingester = Annotated[Principal, Depends(require("ingest"))]

SCHEMA_REF = "#/components/schemas/{model}"
_schema = TypeAdapter(Detection).json_schema(ref_template=SCHEMA_REF)
# the detection models (SensorDetection, ...), for the document's components (app.py)
DETECTION_SCHEMAS: dict[str, Any] = _schema.pop("$defs", {})
_BODY = {
    "required": True,
    "description": "Detections (README: Input: detections). Each is validated on its own: a bad "
    "one is rejected with its index and reason, the others are accepted.",
    "content": {
        JSON: {"schema": {"type": "array", "items": _schema}},
        JSONL[0]: {"schema": {"type": "string", "description": "one detection object per line"}},
    },
}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {int(declared):,} bytes: at most {limit:,} accepted")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body longer than the {limit:,} bytes accepted")
    return bytes(body)


@router.post(
    "",
    summary="Send detections (JSON array or JSON lines)",
    responses=responses(*AUTH, 400, 413, 415),
    openapi_extra={"requestBody": _BODY},
)
async def post_detections(
    request: Request, _: Ingester, api: State, intake: IntakeDep, clock: ClockDep
) -> IngestOut:
    body = await read_body(request, api.settings.api_max_body_bytes)
    try:
        records = split_body(request.headers.get("content-type"), body)
    except MediaTypeError as exc:
        raise HTTPException(415, str(exc)) from None
    except BodyError as exc:
        raise HTTPException(400, str(exc)) from None
    result = await intake.take(records, clock.now())
    return IngestOut(
        accepted=result.accepted,
        rejected=len(result.rejects),
        rejects=[RejectOut.of(r) for r in result.rejects],
        destination=intake.sink.destination,
    )
