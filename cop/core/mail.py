"""Outgoing email: through SMTP when configured, otherwise written to the server log."""

import smtplib
from email.message import EmailMessage

from flask import current_app


def send_mail(to: str, subject: str, body: str) -> None:
    """Send a plain-text email, or log it when no SMTP server is configured."""
    config = current_app.config
    if not config["MAIL_SERVER"]:
        current_app.logger.warning(
            "No SMTP server configured (MAIL_SERVER); email to %s not sent.\nSubject: %s\n\n%s",
            to,
            subject,
            body,
        )
        return
    message = EmailMessage()
    message["From"] = config["MAIL_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)
