"""The mails the example mail plugin has written (one ``.eml`` file each under the instance
folder), and the reset token or confirmation code a mail carries."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from plugins.mail import MAIL_QUEUE


def mails(app: Flask) -> list[Path]:
    """The mails sent so far (they leave from a background thread: waited for first)."""
    queue = MAIL_QUEUE.find(app)
    assert queue is None or queue.drain(10)
    return sorted((Path(app.instance_path) / "mail").glob("*.eml"))


def reset_token(app: Flask) -> str:
    """The token on the last line of the last mail sent."""
    body = mails(app)[-1].read_text()
    return body.split("\n\n")[-1].strip().splitlines()[-1].strip()
