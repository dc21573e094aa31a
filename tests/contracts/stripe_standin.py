"""A local stand-in for the part of Stripe's HTTP API the marketplace uses, and signed webhook delivery.

A real HTTP server on 127.0.0.1 (a random free port, its own thread) that the real stripe SDK talks to:
form-encoded requests with bracketed keys, Bearer authentication, Stripe-shaped JSON objects, lists and
errors, and idempotency as Stripe documents it (the first response to a key is replayed for every repeat;
the same key with other parameters is an error; a repeat while the first is still running is a 409).
It can be told to fail (500) or to stall past the client's timeout (finishing the work afterwards, as a
slow Stripe would) for the next requests, then recovers; or to do one request's work and then hold its
answer until released (the moment a client that dies loses the answer to work already done).

Webhooks are delivered with a real `Stripe-Signature` header: `t=<unix time>,v1=<HMAC-SHA256 of
"<t>.<raw body>" keyed with the endpoint secret, in hex>`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import AsyncTestClient

from market.app import create_app
from market.database import utcnow
from market.models import OutboxMessage
from market.parts import Parts
from market.settings import Settings

API_KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_standin_" + "x" * 24


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status, self.body = (
            status,
            {
                "error": {
                    "type": type,
                    "message": message,
                    **({"code": code} if code else {}),
                    **({"param": param} if param else {}),
                }
            },
        )


def form_to_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`metadata[invoice_id]=7&expand[0]=x` as Stripe reads it: nested objects and lists."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return result


@dataclass
class Call:
    method: str
    path: str
    idempotency_key: str | None
    outcome: str  # "ok", "replayed", "failed", "stalled", "held", "error"


@dataclass
class StripeStandIn:
    api_key: str = API_KEY
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoice_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    stall_seconds: float = 1.5
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _faults: list[str] = field(default_factory=list)
    _idempotent: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)
    _hold_path_end: str | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _busy: int = 0
    url: str = ""

    # --- what a test controls ---------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, after: int = 0) -> None:
        """After `after` good requests, the next `count` answer 500 before doing anything (nothing is kept for their keys)."""
        with self._lock:
            self._faults.extend([""] * after + ["fail"] * count)

    def stall_next(self, count: int = 1, *, after: int = 0) -> None:
        """After `after` good requests, the next `count` do their work only after `stall_seconds` (the client has given up by then)."""
        with self._lock:
            self._faults.extend([""] * after + ["stall"] * count)

    def hold_after_applying(self, path_end: str) -> None:
        """The next POST whose path ends with `path_end` is carried out (and kept for its idempotency key), then
        its answer waits until `release()`; `holding` is set once the work is done."""
        with self._lock:
            self._hold_path_end = path_end
            self.holding.clear()
            self._released.clear()

    def release(self) -> None:
        """Send the held answer (to a client that may have gone)."""
        self._released.set()

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self._busy, "the stand-in is still handling a request"

    def calls_to(self, method: str, path_start: str) -> list[Call]:
        return [call for call in self.calls if call.method == method and call.path.startswith(path_start)]

    def set_status(self, invoice_id: str, status: str) -> dict[str, Any]:
        """What a payment, a void or a write-off in Stripe's dashboard does to an open invoice."""
        with self._lock:
            invoice = self.invoices[invoice_id]
            now = int(time.time())
            invoice["status"] = status
            if status == "paid":
                invoice["amount_paid"], invoice["amount_remaining"], invoice["paid"] = invoice["amount_due"], 0, True
                invoice["status_transitions"]["paid_at"] = now
            elif status == "void":
                invoice["status_transitions"]["voided_at"] = now
            elif status == "uncollectible":
                invoice["status_transitions"]["marked_uncollectible_at"] = now
            return json.loads(json.dumps(invoice))

    def event(self, type: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
        return {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()) if created is None else created,
            "type": type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }

    # --- the API ------------------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(4)}"

    def handle(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = [part for part in path.split("/") if part]
        if parts[:1] != ["v1"]:
            raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")
        route = parts[1:]
        if method == "POST" and route == ["customers"]:
            return 200, self._create_customer(params)
        if method == "POST" and route == ["invoices"]:
            return 200, self._create_invoice(params)
        if method == "GET" and route == ["invoices"]:
            return 200, self._list_invoices(params)
        if method == "POST" and route == ["invoiceitems"]:
            return 200, self._create_item(params)
        if len(route) >= 2 and route[0] == "invoices":
            invoice = self.invoices.get(route[1])
            if invoice is None:
                raise StripeError(404, f"No such invoice: '{route[1]}'", code="resource_missing", param="id")
            if method == "GET" and len(route) == 2:
                return 200, invoice
            if method == "POST" and route[2:] == ["finalize"]:
                return 200, self._finalize(invoice)
            if method == "POST" and route[2:] == ["send"]:
                return 200, self._send(invoice)
            if method == "POST" and route[2:] in (["pay"], ["void"], ["mark_uncollectible"]):
                if invoice["status"] != "open":
                    raise StripeError(400, f"Invoice is {invoice['status']}, not open.", code="invoice_not_open")
                return 200, self.set_status(
                    invoice["id"], {"pay": "paid", "void": "void", "mark_uncollectible": "uncollectible"}[route[2]]
                )
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "livemode": False,
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
        }
        self.customers[customer["id"]] = customer
        return customer

    def _create_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer")
        if customer not in self.customers:
            raise StripeError(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        if params.get("collection_method") == "send_invoice" and not params.get("days_until_due"):
            raise StripeError(
                400, "Missing required param: days_until_due.", code="parameter_missing", param="days_until_due"
            )
        invoice_id = self._id("in")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "status": "draft",
            "livemode": False,
            "collection_method": params.get("collection_method", "charge_automatically"),
            "days_until_due": int(params["days_until_due"]) if params.get("days_until_due") else None,
            "currency": params.get("currency", "krw"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "auto_advance": params.get("auto_advance") == "true",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "subtotal": 0,
            "total": 0,
            "paid": False,
            "number": None,
            "due_date": None,
            "hosted_invoice_url": None,
            "created": int(time.time()),
            "status_transitions": {
                "finalized_at": None,
                "paid_at": None,
                "voided_at": None,
                "marked_uncollectible_at": None,
            },
            "lines": {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
            "sent_count": 0,
        }
        self.invoices[invoice_id] = invoice
        return invoice

    def _create_item(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("customer") not in self.customers:
            raise StripeError(
                400, f"No such customer: '{params.get('customer')}'", code="resource_missing", param="customer"
            )
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            raise StripeError(400, "Invalid integer: amount", param="amount") from None
        invoice = self.invoices.get(params.get("invoice", ""))
        if params.get("invoice") and invoice is None:
            raise StripeError(400, f"No such invoice: '{params['invoice']}'", code="resource_missing", param="invoice")
        if invoice is not None and invoice["status"] != "draft":
            raise StripeError(400, "You can only add invoice items to draft invoices.", param="invoice")
        item = {
            "id": self._id("ii"),
            "object": "invoiceitem",
            "customer": params["customer"],
            "amount": amount,
            "currency": params.get("currency", "krw"),
            "description": params.get("description"),
            "invoice": invoice["id"] if invoice else None,
            "livemode": False,
            "date": int(time.time()),
        }
        self.invoice_items[item["id"]] = item
        if invoice is not None:
            invoice["lines"]["data"].append(
                {"id": f"il_{item['id']}", "object": "line_item", "amount": amount, "description": item["description"]}
            )
            invoice["subtotal"] = invoice["total"] = invoice["amount_due"] = invoice["amount_remaining"] = sum(
                line["amount"] for line in invoice["lines"]["data"]
            )
        return item

    def _finalize(self, invoice: dict[str, Any]) -> dict[str, Any]:
        if invoice["status"] != "draft":
            raise StripeError(
                400,
                "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                code="invoice_not_editable",
            )
        now = int(time.time())
        invoice["status"], invoice["number"] = "open", f"STANDIN-{len(self.invoices):04d}"
        invoice["status_transitions"]["finalized_at"] = now
        invoice["due_date"] = now + 86400 * (invoice["days_until_due"] or 0)
        invoice["hosted_invoice_url"] = f"{self.url}/i/{invoice['id']}"
        return invoice

    def _send(self, invoice: dict[str, Any]) -> dict[str, Any]:
        if invoice["collection_method"] != "send_invoice":
            raise StripeError(400, "You can only manually send an invoice if its collection method is 'send_invoice'.")
        if invoice["status"] not in ("open", "paid"):
            raise StripeError(400, "You can only send an invoice that is open.", code="invoice_not_open")
        invoice["sent_count"] += 1
        return invoice

    def _list_invoices(self, params: dict[str, Any]) -> dict[str, Any]:
        ordered = sorted(self.invoices.values(), key=lambda invoice: invoice["id"], reverse=True)  # newest first
        if params.get("starting_after"):
            ids = [invoice["id"] for invoice in ordered]
            ordered = ordered[ids.index(params["starting_after"]) + 1 :] if params["starting_after"] in ids else []
        limit = min(int(params.get("limit", 10)), 100)
        return {"object": "list", "url": "/v1/invoices", "has_more": len(ordered) > limit, "data": ordered[:limit]}

    # --- HTTP ---------------------------------------------------------------------------------------------

    def serve(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        target = urlsplit(path)
        key = headers.get("idempotency-key") if method == "POST" else None
        with self._lock:
            if method == "POST" and self._hold_path_end is not None and target.path.endswith(self._hold_path_end):
                fault, self._hold_path_end = "hold", None
            else:
                fault = self._faults.pop(0) if self._faults else None
        if fault == "fail":
            self.calls.append(Call(method, target.path, key, "failed"))
            return (
                500,
                {
                    "error": {
                        "type": "api_error",
                        "message": "An unknown error occurred (the stand-in was told to fail).",
                    }
                },
                {},
            )
        if fault == "stall":
            if key is not None:
                with self._lock:
                    self._running.add(key)
            time.sleep(self.stall_seconds)
            with self._lock:
                self._running.discard(key or "")
        if headers.get("authorization") != f"Bearer {self.api_key}":
            self.calls.append(Call(method, target.path, key, "error"))
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}}, {}
        params = form_to_dict(parse_qsl(body if method == "POST" else target.query, keep_blank_values=True))
        fingerprint = json.dumps([method, target.path, params], sort_keys=True)
        with self._lock:
            if key is not None:
                if key in self._running:
                    self.calls.append(Call(method, target.path, key, "error"))
                    return (
                        409,
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": "There is currently another in-progress request using this Idempotent Key.",
                            }
                        },
                        {},
                    )
                if key in self._idempotent:
                    first, status, response = self._idempotent[key]
                    if first != fingerprint:
                        self.calls.append(Call(method, target.path, key, "error"))
                        return (
                            400,
                            {
                                "error": {
                                    "type": "idempotency_error",
                                    "message": f"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.",
                                }
                            },
                            {},
                        )
                    self.calls.append(Call(method, target.path, key, "replayed"))
                    return status, response, {"Idempotent-Replayed": "true"}
            try:
                status, response = self.handle(method, target.path, params)
            except StripeError as error:
                status, response = error.status, error.body
            response = json.loads(json.dumps(response))  # a snapshot: later changes do not alter a replay
            if key is not None:
                self._idempotent[key] = (fingerprint, status, response)
            self.calls.append(
                Call(method, target.path, key, {"stall": "stalled", "hold": "held"}.get(fault or "", "ok"))
            )
        if fault == "hold":
            self.holding.set()
            self._released.wait(timeout=120)
        return status, response, {}


def _handler_for(standin: StripeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            standin._busy += 1
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, response, extra = standin.serve(self.command, self.path, headers, body)
                payload = json.dumps(response).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (a stall): the work is done all the same
            finally:
                standin._busy -= 1

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the calls list is the log
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer (a stall) is expected here


@contextmanager
def running_standin() -> Iterator[StripeStandIn]:
    standin = StripeStandIn()
    server = _Server(("127.0.0.1", 0), _handler_for(standin))
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:  # answering, not merely bound
        try:
            if httpx.get(f"{standin.url}/v1/ping", timeout=1).status_code:
                break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    standin.calls.clear()
    try:
        yield standin
    finally:
        standin.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- webhooks ----------------------------------------------------------------------------------------------


def signature_header(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def deliver(
    client: Any,
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """POST the event to /webhooks/stripe as Stripe does: the raw JSON body and its signature header."""
    payload = json.dumps(event, separators=(",", ":"))
    header = signature if signature is not None else signature_header(payload, secret, timestamp)
    return await client.post(
        "/webhooks/stripe",
        content=payload.encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )


# --- fixtures (import them into a test module by name) --------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[StripeStandIn]:
    with running_standin() as running:
        yield running


@pytest.fixture
def stripe_settings(settings: Settings, standin: StripeStandIn) -> Settings:
    """The run's settings in Stripe mode, pointed at the stand-in."""
    return settings.with_(stripe_api_key=API_KEY, stripe_api_base=standin.url, stripe_webhook_secret=WEBHOOK_SECRET)


@pytest.fixture(scope="session")
def stripe_app(base_settings: Settings, parts: Parts) -> Litestar:
    """The app with a webhook secret (the webhook needs nothing else); built once."""
    return create_app(base_settings.with_(stripe_api_key=API_KEY, stripe_webhook_secret=WEBHOOK_SECRET), parts=parts)


@pytest.fixture
async def stripe_client(stripe_app: Litestar, settings: Settings) -> Any:
    async with AsyncTestClient(app=stripe_app, base_url="http://testserver.local") as client:
        yield client


async def make_due(sessions: Any) -> None:
    """The outbox's backoff, skipped: every pending message is due now."""
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(OutboxMessage).where(OutboxMessage.status == "pending").values(next_attempt_at=utcnow())
        )


async def outbox_messages(sessions: Any, kind: str) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
                )
            ).all()
        )
