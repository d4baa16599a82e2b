"""Email over SMTP (smtplib), as Alertmanager's `email_configs` sends it.

Port 465 is implicit TLS; otherwise `require_tls` (the default) demands STARTTLS and refuses
a server that does not offer it, and `require_tls: false` sends in the clear, as Alertmanager
does. SMTP 4xx answers and connection failures are worth retrying; 5xx answers (a refused
login, sender or recipient) are not.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.errors import NotifyError
from controlplane.notify.message import html_body, subject, text_body
from controlplane.notify.receivers import EmailConfig


def build_message(
    config: EmailConfig,
    *,
    group_key: GroupKey,
    alerts: Sequence[Alert],
    status: AlertStatus,
    external_url: str = "",
) -> EmailMessage:
    """The message, headers and parts; configured headers win over the defaults."""
    message = EmailMessage()
    line = " ".join(subject(group_key, alerts, status).split())  # labels may hold newlines
    headers = {"From": config.from_, "To": config.to, "Subject": line}
    headers |= {"Date": formatdate(usegmt=True), "Message-Id": make_msgid(domain=config.hello)}
    for name, value in (headers | dict(config.headers)).items():
        message[name] = value
    text = (
        text_body(group_key, alerts, status, external_url) if config.text is None else config.text
    )
    html = (
        html_body(group_key, alerts, status, external_url) if config.html is None else config.html
    )
    if text and html:
        message.set_content(text)
        message.add_alternative(html, subtype="html")
    elif html:
        message.set_content(html, subtype="html")
    else:
        message.set_content(text)
    return message


class EmailNotifier:
    def __init__(self, config: EmailConfig, *, external_url: str = "") -> None:
        self._config = config
        self._external_url = external_url

    def pace_key(self) -> str:
        host, port = self._config.smarthost
        return f"email {host}:{port} {self._config.to}"

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        try:
            message = build_message(
                self._config,
                group_key=group_key,
                alerts=alerts,
                status=status,
                external_url=self._external_url,
            )
            message.as_bytes()  # a header that cannot be written fails here, not mid-session
        except ValueError as exc:
            raise NotifyError(f"email to {self._config.to!r}: {exc}", retryable=False) from exc
        host, port = self._config.smarthost
        try:
            self._send(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise NotifyError(
                f"email via {host}:{port}: recipients refused: {exc.recipients!r}",
                retryable=all(400 <= c < 500 for c in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise NotifyError(
                f"email via {host}:{port}: {exc.smtp_code} {exc.smtp_error!r}",
                retryable=400 <= exc.smtp_code < 500,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise NotifyError(f"email via {host}:{port}: {exc}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"email via {host}:{port}: {exc}", retryable=True) from exc

    def _send(self, message: EmailMessage) -> None:
        config = self._config
        host, port = config.smarthost
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if port == 465:
            smtp = smtplib.SMTP_SSL(
                host, port, local_hostname=config.hello, timeout=config.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(host, port, local_hostname=config.hello, timeout=config.timeout_s)
        with smtp:
            smtp.ehlo()
            if port != 465 and config.require_tls:
                if not smtp.has_extn("starttls"):
                    raise NotifyError(
                        f"email: require_tls is true but {host}:{port} does not offer STARTTLS",
                        retryable=False,
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.auth_username:
                smtp.login(config.auth_username, self._password())
            recipients = [address for _, address in getaddresses([config.to]) if address]
            smtp.send_message(message, from_addr=config.from_, to_addrs=recipients)

    def _password(self) -> str:
        if self._config.auth_password is not None:
            return self._config.auth_password
        path = self._config.auth_password_file or ""
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise NotifyError(f"email auth_password_file {path!r}: {exc}", retryable=False) from exc
