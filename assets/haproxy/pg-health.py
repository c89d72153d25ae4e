#!/usr/bin/env python3
# Managed by ha-setup (db-routing). HTTP health check for HAProxy (option httpchk):
# 200 when the local PostgreSQL is the writable primary, 503 otherwise (standby, read-only,
# down, or the check itself failed). Logs every check to stdout (the journal).
# Logs in as health_check_user; the password comes from the file in PGPASSFILE (0600).
# Python 3.6+ standard library only.
import argparse
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

QUERY = ("select case when pg_is_in_recovery() then 'standby' "
         "when current_setting('default_transaction_read_only') = 'on' then 'read-only' "
         "else 'primary' end")


def pg_state(args):
    """'primary', 'standby', 'read-only', or 'down: <why>'."""
    env = dict(os.environ, PGCONNECT_TIMEOUT=str(args.timeout), PGAPPNAME='ha-setup-health')
    cmd = [args.psql, '-X', '-A', '-t', '-q', '-h', args.pg_host, '-p', str(args.pg_port),
           '-U', args.user, '-d', args.dbname, '-c', QUERY]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=args.timeout + 1, env=env)
    except subprocess.TimeoutExpired:
        return 'down: no answer within %d s' % (args.timeout + 1)
    except OSError as e:
        return 'down: cannot run %s (%s)' % (args.psql, e.strerror)
    out = p.stdout.strip()
    if p.returncode != 0 or out not in ('primary', 'standby', 'read-only'):
        why = (p.stderr.strip().splitlines() or ['exit %d' % p.returncode])[-1]
        return 'down: %s' % why
    return out


class Handler(BaseHTTPRequestHandler):
    timeout = 5  # a client that sends nothing does not hold a thread

    def answer(self, body=True):
        state = pg_state(self.server.args)
        code = 200 if state == 'primary' else 503
        text = ('%s\n' % state).encode()
        # The decision is logged first: HAProxy may close the connection once it has the status.
        print('check from %s: %s -> %d' % (self.client_address[0], state, code), flush=True)
        try:
            self.send_response(code)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(text)))
            self.send_header('Connection', 'close')
            self.end_headers()
            if body:
                self.wfile.write(text)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the checker already had its answer

    def do_GET(self):
        self.answer()

    def do_OPTIONS(self):  # HAProxy's default httpchk request
        self.answer()

    def do_HEAD(self):
        self.answer(body=False)

    def log_message(self, fmt, *args):  # one line per check is printed by answer()
        pass


class Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # One line instead of a traceback per misbehaving client.
        print('client %s: %s' % (client_address[0], sys.exc_info()[1]), flush=True)


def main():
    ap = argparse.ArgumentParser(description='HTTP 200 when the local PostgreSQL is the writable primary')
    ap.add_argument('--listen', default='0.0.0.0')
    ap.add_argument('--port', type=int, default=25432)
    ap.add_argument('--psql', default='psql')
    ap.add_argument('--pg-host', default='127.0.0.1')
    ap.add_argument('--pg-port', type=int, default=5432)
    ap.add_argument('--user', default='health_check_user')
    ap.add_argument('--dbname', default='postgres')
    ap.add_argument('--timeout', type=int, default=2)
    args = ap.parse_args()
    srv = Server((args.listen, args.port), Handler)
    srv.args = args
    print('listening on %s:%d, checking %s:%d as %s' % (args.listen, args.port, args.pg_host, args.pg_port, args.user), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
