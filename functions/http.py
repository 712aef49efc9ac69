"""HTTP error replies shared by the app's HTTP functions: a stable code and a message, never a traceback."""

from __future__ import annotations

import azure.functions as func
import orjson

JSON = "application/json"


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """`{"error": {"code": ..., "message": ...}}` with the given status."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return func.HttpResponse(body, status_code=status, mimetype=JSON, headers=headers)
