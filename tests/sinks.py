"""Local stand-ins for the services notices go to: an SMTP server (aiosmtpd) and an SMS
gateway's webhook (http.server), both on 127.0.0.1. Tests await what arrives; nothing sleeps."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

WAIT_S = 30  # the longest any awaited delivery may take on a loaded machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MailSink:
    """aiosmtpd's handler: keeps every message; refuses the first `refuse` with a 451."""

    refuse: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, to: str | None = None) -> list[EmailMessage]:
        """The messages (to `to`, if given), once at least `count` arrived: awaited, not slept for."""

        def mine() -> list[EmailMessage]:
            return [m for m in self.messages if to is None or m["To"] == to]

        with self.arrived:
            assert self.arrived.wait_for(lambda: len(mine()) >= count, timeout=WAIT_S), mine()
            return mine()


@contextmanager
def mail_sink() -> Iterator[MailSink]:
    """An SMTP server on loopback for the block."""
    sink = MailSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class Gateway:
    """What the webhook receiver got, and the statuses it answers with (then 200)."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)


@contextmanager
def webhook_gateway() -> Iterator[Gateway]:
    """An SMS gateway's webhook on loopback for the block."""
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = state.statuses.pop(0) if state.statuses else 200
            if status == 200:
                state.bodies.append(body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
