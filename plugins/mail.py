"""Outgoing mail of the local accounts (``plugins.passwords``): a queue per application whose
thread (``app.background``) sends each message through the ``mail_sender`` hook's ``send``.

Mail leaves off the request path, so that a request takes as long whether or not it sends one
(a password reset for an unknown address queues a message addressed to no one, which is dropped
here). Nothing of a message reaches the log: not the address, not the body (it may hold a reset
token), not a sender's error message.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app

from app.background import BackgroundQueue
from app.plugins import hook
from app.state import Slot

log = logging.getLogger(__name__)

MAIL_QUEUE_SIZE = 1000
MAIL_DRAIN_AT_EXIT_SECONDS = 5.0

Sender = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Mail:
    """A message for the mail queue; ``to`` is None for one that is built and queued only so
    that a request for an unknown address does the same work as for a known one."""

    send: Sender
    to: str | None
    subject: str
    body: str


class MailQueue(BackgroundQueue[Mail]):
    """Outgoing mail, sent by the queue's thread."""

    def _deliver(self, mail: Mail) -> None:
        if mail.to is None:
            return
        try:
            mail.send(mail.to, mail.subject, mail.body)
        except Exception as exc:  # noqa: BLE001 - any sender failure: logged, the thread goes on
            log.error("mail not sent: the sender failed (%s)", type(exc).__name__)

    def _overflow(self, mail: Mail) -> None:
        log.warning("mail queue full: a message was not sent (%d so far)", self.dropped)


MAIL_QUEUE: Slot[MailQueue] = Slot("mail")  # made on the application's first message


def mail_queue(app: Flask) -> MailQueue:
    queue = MAIL_QUEUE.find(app)
    if queue is None:
        queue = MAIL_QUEUE.setdefault(app, MailQueue(MAIL_QUEUE_SIZE, "mail"))
        # A worker that stops (deploy, gunicorn's max_requests) sends what it already queued.
        atexit.register(queue.drain, MAIL_DRAIN_AT_EXIT_SECONDS)
    return queue


def queue_mail(to: str | None, subject: str, body: str) -> None:
    """Hand a message to the mail queue (``to`` None: the same work, nothing sent)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sender = hook(app).mail_sender(config=dict(app.config), instance_path=app.instance_path)
    if sender is None:
        raise RuntimeError("no mail_sender plugin")
    mail_queue(app).put(Mail(sender, to, subject, body))
