"""The tests' SMTP server: aiosmtpd (a maintained asyncio SMTP server from PyPI) with a
handler that keeps every accepted message as one JSON file in OUT_DIR, parsed with Python's
email package, so tests read subject, recipients, Message-ID and the text and HTML parts.

Replies by recipient, so tests can ask for a refusal through the real protocol:
  reject*@...  550 5.1.1 (permanent)      busy*@...  451 4.3.0 (transient)
  stall*@...   takes the message after DATA and never answers it

Usage: smtp_sink.py PORT OUT_DIR
"""

import email
import email.policy
import json
import os
import asyncio
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("busy"):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(a.split("@", 1)[0].lower().startswith("stall") for a in envelope.rcpt_tos):
            await asyncio.sleep(3600)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["Subject"]),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "message_id": str(msg["Message-ID"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        with self.lock:
            self.count += 1
            n = self.count
        path = os.path.join(self.out_dir, "%06d-%d.json" % (n, os.getpid()))
        # Written then renamed, so a reader never sees half a message.
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as %d" % n


def main():
    port, out_dir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    controller = Controller(Sink(out_dir), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("listening on %d" % port, flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
