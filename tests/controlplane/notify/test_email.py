"""email_configs through the outbox, against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from controlplane.errors import ConfigError
from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.email import EmailNotifier
from controlplane.notify.errors import NotifyError
from controlplane.notify.receivers import EmailConfig
from controlplane.notify.routing import parse_routing
from tests.conftest import free_port
from tests.controlplane.notify.conftest import FakeClock, alert, routing_from, wire

KEY = GroupKey(route_key="{}", labels=(("alertname", "WalletDown"),))


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; refuses recipients at `refuse`."""

    received: list[Envelope] = field(default_factory=list)
    refuse: str = "nobody@example.org"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(bytes(e.content or b""), policy=email.policy.default)  # type: ignore[misc]
            for e in self.received
        ]


def _login(
    server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"cp", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=_login, auth_require_tls=False
    )
    controller.start()
    yield box, port
    controller.stop()


def config(port: int, **extra: Any) -> EmailConfig:
    base: dict[str, Any] = {
        "to": "oncall@example.org, lead@example.org",
        "from_": "controlplane@example.org",
        "smarthost": ("127.0.0.1", port),
        "require_tls": False,
    }
    return EmailConfig(**(base | extra))


def test_a_notification_mail_through_the_outbox(
    smtp: tuple[Mailbox, int], sqlite_engine: sa.Engine, clock: FakeClock
) -> None:
    box, port = smtp
    routing = routing_from(
        f"""
route: {{receiver: mail, group_by: [alertname], group_wait: 0s, group_interval: 1m}}
receivers:
  - name: mail
    email_configs:
      - to: "oncall@example.org, lead@example.org"
        from: controlplane@example.org
        smarthost: 127.0.0.1:{port}
        require_tls: false
        headers: {{x-team: wallet}}
"""
    )
    cp = wire(routing, sqlite_engine, clock)
    firing = Alert.of(
        {"alertname": "WalletDown", "region": "eu"},
        starts_at=clock.now,
        annotations={"summary": "wallet <down> in eu"},
        generator_url="http://cp.example/graph?g0.expr=up",
    )
    cp.dispatcher.put([firing])
    assert cp.tick(clock.at(seconds=0)) == 1
    (envelope,) = box.received
    assert envelope.mail_from == "controlplane@example.org"
    assert envelope.rcpt_tos == ["oncall@example.org", "lead@example.org"]
    (mail,) = box.messages()
    assert mail["Subject"] == "[FIRING:1] WalletDown (eu)"
    assert mail["From"] == "controlplane@example.org"
    assert mail["To"] == "oncall@example.org, lead@example.org"
    assert mail["X-Team"] == "wallet" and mail["Message-Id"] and mail["Date"]
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert "Firing alerts (1):" in plain and " - summary = wallet <down> in eu" in plain
    assert "Source: http://cp.example/graph?g0.expr=up" in plain
    assert "wallet &lt;down&gt; in eu" in html.get_content()  # escaped in HTML
    # email does not send resolutions unless asked, as in Alertmanager
    cp.dispatcher.put([alert("WalletDown", region="eu", ends_at=clock.now)])
    cp.tick(clock.at(seconds=60))
    assert len(box.received) == 1


def test_configured_subject_and_text_only(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    notifier = EmailNotifier(config(port, headers={"Subject": "Wallet!"}, html="", text="Look."))
    notifier.notify(KEY, "mail", [alert("WalletDown")], AlertStatus.FIRING)
    (mail,) = box.messages()
    assert mail["Subject"] == "Wallet!" and mail.get_content_type() == "text/plain"
    assert mail.get_content().strip() == "Look."


def test_login(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    good = EmailNotifier(config(port, auth_username="cp", auth_password="s3cret"))
    good.notify(KEY, "mail", [alert("WalletDown")], AlertStatus.FIRING)
    assert len(box.received) == 1
    bad = EmailNotifier(config(port, auth_username="cp", auth_password="wrong"))
    with pytest.raises(NotifyError, match="535") as info:
        bad.notify(KEY, "mail", [alert("WalletDown")], AlertStatus.FIRING)
    assert not info.value.retryable


def test_require_tls_refuses_a_server_without_starttls(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    notifier = EmailNotifier(config(port, require_tls=True))
    with pytest.raises(NotifyError, match="does not offer STARTTLS") as info:
        notifier.notify(KEY, "mail", [alert("WalletDown")], AlertStatus.FIRING)
    assert not info.value.retryable and box.received == []


def test_a_refused_recipient_is_not_retried(smtp: tuple[Mailbox, int]) -> None:
    _, port = smtp
    notifier = EmailNotifier(config(port, to="nobody@example.org"))
    with pytest.raises(NotifyError, match="recipients refused") as info:
        notifier.notify(KEY, "mail", [alert("WalletDown")], AlertStatus.FIRING)
    assert not info.value.retryable


def test_no_server_is_worth_retrying() -> None:
    notifier = EmailNotifier(config(free_port(), timeout_s=2))
    with pytest.raises(NotifyError) as info:
        notifier.notify(KEY, "mail", [alert("WalletDown")], AlertStatus.FIRING)
    assert info.value.retryable


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"from": "a@x", "smarthost": "h:25"}, "to: None is not an email address"),
        ({"to": "a@x", "smarthost": "h:25"}, "from: None is not an email address"),
        ({"to": "a@x", "from": "b@x"}, "smarthost: None is not host:port"),
        ({"to": "a@x", "from": "b@x", "smarthost": "h"}, "smarthost: 'h' is not host:port"),
        (
            {"to": "a@x", "from": "b@x", "smarthost": "h:25", "auth_password": "p"},
            "auth_username: a password needs an auth_username",
        ),
        (
            {"to": "a@x", "from": "b@x", "smarthost": "h:25", "tls_config": {}},
            "tls_config: unknown or unsupported field",
        ),
    ],
)
def test_config_errors_name_the_file_and_field(conf: dict[str, Any], message: str) -> None:
    text = {"route": {"receiver": "m"}, "receivers": [{"name": "m", "email_configs": [conf]}]}
    with pytest.raises(ConfigError) as info:
        parse_routing(text, source="routing.yml")
    assert str(info.value).startswith("routing.yml: receivers[0].email_configs[0].")
    assert message in str(info.value)
