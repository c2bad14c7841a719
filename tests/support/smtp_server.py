"""The SMTP server of the live-mail tests (aiosmtpd, run with Debian's /usr/bin/python3).

Keeps every message it accepts in a Maildir (aiosmtpd's Mailbox handler, which adds X-Peer,
X-MailFrom and X-RcptTo). Optional: STARTTLS (required) or implicit TLS with a given
certificate, AUTH required with one user, and a permanent refusal (550) of chosen recipients.
"""

import argparse
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--maildir", required=True)
parser.add_argument("--cert")
parser.add_argument("--key")
parser.add_argument("--implicit-tls", action="store_true")
parser.add_argument("--auth", help="user:password; AUTH is then required")
parser.add_argument("--reject", action="append", default=[], help="answer 550 to this RCPT")
args = parser.parse_args()
rejected = {r.lower() for r in args.reject}


class Handler(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in rejected:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    user, password = args.auth.split(":", 1)
    login = getattr(auth_data, "login", b"") or b""
    given = getattr(auth_data, "password", b"") or b""
    # handled=False: aiosmtpd answers (235 or 535) itself.
    ok = login.decode() == user and given.decode() == password
    return AuthResult(success=ok, handled=False)


options = {"hostname": "127.0.0.1", "port": args.port}
context = None
if args.cert:
    # A context usable on both sides: the controller's start-up probe connects as a client.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS)
    context.load_cert_chain(args.cert, args.key)
    if args.implicit_tls:
        options["ssl_context"] = context
    else:
        options.update(tls_context=context, require_starttls=True)
if args.auth:
    # aiosmtpd counts only STARTTLS as TLS for AUTH; implicit TLS is TLS from the start.
    options.update(
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=context is not None and not args.implicit_tls,
    )

controller = Controller(Handler(args.maildir), **options)
controller.start()
while True:
    time.sleep(3600)
