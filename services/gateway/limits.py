"""Request size limit, enforced before the body is read (pure ASGI middleware).

A body larger than ``MAX_BODY_BYTES`` is answered 413 (``too_large`` / ``oversized``):
- at once, unread, when its ``Content-Length`` says so;
- otherwise (chunked) as soon as the bytes received pass the limit; the rest is never read.
A body within the limit is handed to the application unchanged. Each application must also fit
one message of the ``applications`` topic (``MAX_MESSAGE_BYTES``), checked after validation by
``services.gateway.ingest.admit_applications`` (413 as well).

Installed with one line in ``services/gateway/app.py``: ``app.add_middleware(BodyLimit)``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from services.platform.topology import MAX_MESSAGE_BYTES

#: A batch of applications (up to 1000) may be larger than one message, never larger than this.
MAX_BODY_BYTES = int(os.environ.get("DOPOMOGA_GATEWAY_MAX_BODY", str(32 * MAX_MESSAGE_BYTES)))  # 8 MiB

Scope = dict[str, Any]


class BodyLimit:
    def __init__(self, app: Any, limit: int | None = None):
        self.app = app
        self.limit = MAX_BODY_BYTES if limit is None else limit

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": "too_large", "reason_code": "oversized",
                           "message": f"the request body is larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.limit:
                await self._refuse(send)
                return
        # Read (at most limit + 1 bytes of) the body here, then replay it to the application.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, original: Any) -> Any:
    """The body in one message, then the server's own ``receive`` (which reports a disconnect)."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
