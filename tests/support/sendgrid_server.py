"""A local stand-in for SendGrid's v3 Mail Send API, for driving the real `sendgrid` SDK in tests.

It answers POST /v3/mail/send the way SendGrid documents it:
- `Authorization: Bearer <api key>` must match, else 401 with SendGrid's error body.
- The JSON body must have the shape the API requires (personalizations[].to[].email, from.email, a
  subject, content[] with text/plain before text/html, categories and custom_args of the right types),
  else 400 with {"errors": [{"message", "field", "help"}]} naming the field.
- A good message gets 202 Accepted with an empty body and an `X-Message-Id` header.
- `fail_next(status, times)` makes the next requests answer 500 / 400 / 429 / ... instead.
Every request is recorded (path, headers, parsed body, the status answered) so tests check what the SDK sent.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer

BAD_KEY = "The provided authorization grant is invalid, expired, or revoked"


@dataclass(frozen=True)
class Received:
    """One request as the server got it, with the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    message_id: str | None


def _error(message: str, field: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": None}


def _email_errors(value: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str) or "@" not in value["email"]:
        return [_error("Does not contain a valid address.", f"{field}.email")]
    return []


def validate(body: Any) -> list[dict[str, Any]]:
    """The errors SendGrid would report for this request body (empty when it would accept it)."""
    if not isinstance(body, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(_error("The personalizations field is required.", "personalizations"))
    else:
        for index, item in enumerate(personalizations):
            to = item.get("to") if isinstance(item, dict) else None
            if not isinstance(to, list) or not to:
                errors.append(_error("The to array is required.", f"personalizations.{index}.to"))
                continue
            for number, recipient in enumerate(to):
                errors.extend(_email_errors(recipient, f"personalizations.{index}.to.{number}"))
    errors.extend(_email_errors(body.get("from"), "from"))
    has_subject = isinstance(body.get("subject"), str) and body["subject"].strip()
    if not has_subject and not any(
        isinstance(item, dict) and item.get("subject") for item in personalizations or []
    ):
        errors.append(_error("The subject is required.", "subject"))
    content = body.get("content")
    if not isinstance(content, list) or not content:
        errors.append(
            _error("The content value must be a string at least one character in length.", "content")
        )
    else:
        types = [item.get("type") if isinstance(item, dict) else None for item in content]
        if any(not isinstance(item, dict) or not item.get("value") for item in content):
            errors.append(_error("The content value must be a string at least one character.", "content"))
        if "text/plain" in types and types.index("text/plain") != 0:
            errors.append(_error("The text/plain content type must be first.", "content.0.type"))
    categories = body.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        errors.append(_error("Categories must be strings.", "categories"))
    custom_args = body.get("custom_args", {})
    if not isinstance(custom_args, dict) or not all(isinstance(v, str) for v in custom_args.values()):
        errors.append(_error("Custom args values must be strings.", "custom_args"))
    return errors


class SendGridServer(ThreadedServer):
    """The fake API served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key or f"SG.{secrets.token_urlsafe(16)}.{secrets.token_urlsafe(32)}"
        self.received: list[Received] = []
        self._failures: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/v3/mail/send", self._send, methods=["POST"])])
        super().__init__(app, label="the SendGrid test server", thread_name="sendgrid-server")

    def fail_next(self, status: int, *, times: int = 1, message: str | None = None) -> None:
        """Answer the next `times` mail sends with this status (SendGrid's error body) instead of 202."""
        body = {"errors": [_error(message or f"simulated {status}", None)]}
        with self._lock:
            self._failures.extend([(status, body)] * times)

    def reset(self) -> None:
        """Forget recorded requests and pending failures."""
        with self._lock:
            self.received.clear()
            self._failures.clear()

    def accepted(self) -> list[Received]:
        """The requests answered 202."""
        return [request for request in list(self.received) if request.status == 202]

    async def _send(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {key.lower(): value for key, value in request.headers.items()}
        response, message_id = self._answer(headers, body)
        with self._lock:
            self.received.append(
                Received(request.method, request.url.path, headers, body, response.status_code, message_id)
            )
        return response

    def _answer(self, headers: dict[str, str], body: Any) -> tuple[Response, str | None]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"errors": [_error(BAD_KEY, None)]}, status_code=401), None
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            status, payload = failure
            extra = {"x-ratelimit-limit": "600", "x-ratelimit-remaining": "0"} if status == 429 else {}
            return JSONResponse(payload, status_code=status, headers=extra), None
        if not headers.get("content-type", "").startswith("application/json"):
            return JSONResponse(
                {"errors": [_error("Content-Type must be application/json", None)]}, 415
            ), None
        errors = validate(body)
        if errors:
            return JSONResponse({"errors": errors}, status_code=400), None
        message_id = secrets.token_urlsafe(16)
        return Response(status_code=202, headers={"x-message-id": message_id}), message_id


__all__ = ["BAD_KEY", "Received", "SendGridServer", "validate"]
