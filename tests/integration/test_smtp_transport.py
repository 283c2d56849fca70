"""The SMTP transport against a real aiosmtpd server: what is final, what is retried, what is only recorded."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.config import SmtpConfig
from monitor.deliver.email import SmtpTransport
from monitor.deliver.transport import Outgoing
from monitor.errors import DeliveryError
from tests.conftest import SmtpServer

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAYLOAD = b"Subject: hello\r\nFrom: monitor@example.org\r\nTo: desk@example.org\r\n\r\nbody\r\n"


def message(*recipients: str) -> Outgoing:
    return Outgoing(key="msg_1", subscription="desk", target=json.dumps(list(recipients)), payload=PAYLOAD,
                    created_at=NOW)


def transport(server: SmtpServer, **extra: Any) -> SmtpTransport:
    return SmtpTransport(SmtpConfig.model_validate({"host": server.host, "port": server.port,
                                                    "from": "monitor@example.org", "timeout": 10, **extra}))


def send(server: SmtpServer, *recipients: str, **extra: Any) -> str:
    return asyncio.run(transport(server, **extra).send(message(*recipients), now=NOW))


def test_a_message_goes_out_with_the_configured_sender(smtp_server: SmtpServer) -> None:
    assert send(smtp_server, "desk@example.org", security="none") == f"SMTP 127.0.0.1:{smtp_server.port}"
    [envelope] = smtp_server.messages
    assert envelope.mail_from == "monitor@example.org" and envelope.rcpt_tos == ["desk@example.org"]


def test_required_starttls_that_the_server_does_not_offer_is_retried_not_sent(smtp_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
        send(smtp_server, "desk@example.org", security="starttls")
    assert not caught.value.permanent and smtp_server.messages == []


@pytest.mark.parametrize(("answer", "permanent"), [("451 4.3.0 try again later", False),
                                                   ("550 5.1.1 no such user", True)])
def test_every_recipient_refused_is_final_only_for_5xx(smtp_server: SmtpServer, answer: str, permanent: bool) -> None:
    smtp_server.refuse_with = answer
    with pytest.raises(DeliveryError, match="refused every recipient") as caught:
        send(smtp_server, "desk@example.org", security="none")
    assert caught.value.permanent is permanent


@pytest.fixture
def picky_server() -> Iterator[SmtpServer]:
    """Takes mail for desk@ only: a message to several addresses is partly refused."""
    from aiosmtpd.controller import Controller

    state = SmtpServer(host="127.0.0.1", port=0)

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if address != "desk@example.org":
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.messages.append(envelope)
            return "250 Message accepted"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        state.port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=state.port)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


def test_a_partly_refused_message_is_sent_once_and_the_refusal_recorded(picky_server: SmtpServer) -> None:
    where = send(picky_server, "desk@example.org", "gone@example.org", security="none")
    assert '"gone@example.org": 550' in where
    assert [m.rcpt_tos for m in picky_server.messages] == [["desk@example.org"]]


def test_an_unreachable_server_is_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = SmtpServer(host="127.0.0.1", port=probe.getsockname()[1])
    with pytest.raises(DeliveryError, match="unreachable") as caught:
        send(closed, "desk@example.org", security="none")
    assert not caught.value.permanent
