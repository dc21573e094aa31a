"""The floor of an HTTP figure: an ASGI app with nothing in it but the answer, read once from
`$BENCH_BARE_DIR` (`body` and `headers.json`), served by the same uvicorn as the marketplace."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_folder = Path(os.environ["BENCH_BARE_DIR"])
BODY = (_folder / "body").read_bytes()
HEADERS = [
    (name.encode("latin-1"), value.encode("latin-1"))
    for name, value in json.loads((_folder / "headers.json").read_text())
]
HEADERS = [header for header in HEADERS if header[0].lower() != b"content-length"] + [
    (b"content-length", str(len(BODY)).encode())
]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
ANSWER = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(START)
    await send(ANSWER)
