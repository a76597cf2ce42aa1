"""A real SMTP server for the mail tests (aiosmtpd).

usage: smtp_server.py PORT accept|refuse OUT_DIR
accept: every message is written to OUT_DIR as <n>.eml (envelope recipients on the first line).
refuse: every recipient is refused with 550.
Prints "ready" once listening; runs until killed.
"""
import asyncio
import pathlib
import sys

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, mode, out):
        self.mode, self.out, self.count = mode, out, 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "refuse":
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = self.out / f"{self.count}.eml"
        path.write_bytes(",".join(envelope.rcpt_tos).encode() + b"\n" + envelope.content)
        return "250 Message accepted for delivery"


def main():
    port, mode, out = int(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    controller = Controller(Handler(mode, out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
