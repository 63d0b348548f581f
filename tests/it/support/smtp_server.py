"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the email channel's tests.

Usage: smtp_server.py MODE PORT OUT CERT KEY, MODE one of plain, starttls, implicit.
Accepts the login bot/bot-password (only over TLS unless MODE is plain) and appends each
mail it receives to OUT as one JSON line: envelope, login, whether TLS was on, content.
Prints "ready" once listening; stops when stdin closes.
"""

import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

mode, port, out, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"bot" and auth_data.password == b"bot-password"
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.login_data.decode() if session.login_data else None,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "content": envelope.content.decode("utf-8", "replace"),
        }
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
options = {
    "hostname": "127.0.0.1",
    "port": port,
    "authenticator": authenticate,
    # aiosmtpd only counts STARTTLS as TLS for this check; an implicit-TLS connection is
    # encrypted from the first byte, so the login is offered there too.
    "auth_require_tls": mode == "starttls",
}
if mode == "starttls":
    options.update(tls_context=context, require_starttls=True)
elif mode == "implicit":
    options.update(ssl_context=context)
controller = Controller(Handler(), **options)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
