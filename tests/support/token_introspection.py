"""OAuth2 token introspection (RFC 7662) for the live-mail tests' Dovecot: one valid token.

Usage: token_introspection.py PORT TOKEN USERNAME. Answers every POST with
{"active": true, "username": USERNAME} when the form field `token` is TOKEN (or the
Authorization header carries it), and {"active": false} otherwise.
"""

import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, TOKEN, USERNAME = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def answer(self, token):
        body = {"active": True, "username": USERNAME} if token == TOKEN else {"active": False}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        token = (form.get("token") or [""])[0]
        if not token:
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        self.answer(token)

    def do_GET(self):
        self.answer((self.headers.get("Authorization") or "").removeprefix("Bearer ").strip())

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
