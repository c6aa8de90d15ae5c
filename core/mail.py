"""Email: composing the notification digest (plain text and HTML) and sending through SMTP (aiosmtplib)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from html import escape

import aiosmtplib

from core.settings import Settings

DIGEST_MESSAGES = 5  # the newest ones; older ones are counted ("and N more")
DIGEST_CHARS = 200  # each message's text is cut to this length


@dataclass(frozen=True)
class DigestLine:
    """One message as the digest shows it."""

    sender: str
    text: str


@dataclass(frozen=True)
class Digest:
    """What one recipient missed in one conversation."""

    to: str
    username: str
    subject: str
    conversation_id: str
    lines: list[DigestLine]  # oldest first, all of them
    link: str  # opens the conversation in the web client
    unsubscribe: str  # where email notifications are turned off


def cut(text: str, limit: int = DIGEST_CHARS) -> str:
    """`text` in at most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def digest_email(settings: Settings, digest: Digest) -> EmailMessage:
    """The digest as a multipart/alternative mail: the newest messages, each cut, in text and (escaped) HTML."""
    shown = digest.lines[-DIGEST_MESSAGES:]
    more = len(digest.lines) - len(shown)
    earlier = f"and {more} more earlier message{'s' if more > 1 else ''}" if more else ""
    text = "\n".join([
        f"Hello {digest.username},", "", *([f"({earlier})", ""] if earlier else []),
        *(f"{line.sender}: {cut(line.text)}" for line in shown), "", f"Open the conversation: {digest.link}", "",
        f"Stop these emails: {digest.unsubscribe}",
    ])  # fmt: skip
    items = "".join(
        f'<li style="margin:0 0 8px"><strong>{escape(line.sender)}</strong>: {escape(cut(line.text))}</li>' for line in shown
    )
    html = (
        '<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#1b1f24">'
        f"<p>Hello {escape(digest.username)},</p>"
        + (f'<p style="color:#5b6470">{escape(earlier)}</p>' if earlier else "")
        + f'<ul style="padding-left:18px">{items}</ul>'
        f'<p><a href="{escape(digest.link)}" style="color:#1f6feb">Open the conversation</a></p>'
        f'<p style="font-size:12px;color:#5b6470"><a href="{escape(digest.unsubscribe)}">Stop these emails</a></p>'
        "</body></html>"
    )
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = digest.to
    message["Subject"] = digest.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("digest", domain=domain)
    # one thread per conversation in mail clients that group by references
    message["References"] = f"<conversation.{digest.conversation_id}@{domain}>"
    message["List-Unsubscribe"] = f"<{digest.unsubscribe}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


async def send_email(settings: Settings, message: EmailMessage) -> None:
    """Send one composed email; raises on failure so the caller can retry."""
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        use_tls=settings.smtp_tls == "tls",
        start_tls=settings.smtp_tls == "starttls",
        timeout=30,
    )
