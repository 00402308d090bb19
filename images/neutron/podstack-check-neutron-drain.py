#!/usr/bin/python3
"""Build-time test of changes 3 and 4 of podstack-patch-neutron.py: neutron's
own API worker (neutron.wsgi.WorkerService), told to stop while it serves a
request, must answer that request in full and take no new connection; and a
connection it accepted just before, whose request has not arrived yet, must be
answered too (with one request per connection, every accepted connection is a
request on its way). Unpatched, either client's connection is closed with no
answer. Only loopback is used.
"""
import eventlet

eventlet.monkey_patch()

import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from neutron.common import config  # noqa: E402,F401  (registers the wsgi options)
from neutron import wsgi  # noqa: E402

errors = []


def expect(what, ok, detail=''):
    print(f"{'ok' if ok else 'FAILED'}: {what}{': ' + detail if detail else ''}")
    if not ok:
        errors.append(what)


def slow_app(environ, start_response):
    eventlet.sleep(1.0)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'done']


def serve():
    server = wsgi.Server('podstack-check')
    server._socket = server._get_socket('127.0.0.1', 0, backlog=16)
    worker = wsgi.WorkerService(server, slow_app, set_proctitle='off')
    worker.start()
    return worker, server._socket.getsockname()[1]


def request(port, before_sending=0.0):
    c = socket.create_connection(('127.0.0.1', port), timeout=10)
    eventlet.sleep(before_sending)
    try:
        c.sendall(b'GET / HTTP/1.1\r\nHost: check\r\nConnection: close\r\n\r\n')
        got = b''
        while True:
            part = c.recv(4096)
            if not part:
                return got
            got += part
    except OSError as e:
        return repr(e).encode()


def answered(reply):
    return reply.startswith(b'HTTP/1.1 200') and reply.endswith(b'done')


worker, port = serve()
answer = eventlet.spawn(request, port)
eventlet.sleep(0.3)  # the request is in the application now
began = time.monotonic()
worker.stop()
took = time.monotonic() - began
reply = answer.wait()
expect('the request in progress is answered in full', answered(reply), repr(reply[:40]))
expect('stop() waits for it', took >= 0.5, f'{took:.2f}s')
try:
    socket.create_connection(('127.0.0.1', port), timeout=2).close()
    expect('no new connection after stop()', False, 'a connection was accepted')
except OSError as e:
    expect('no new connection after stop()', True, e.strerror or str(e))

# A connection accepted before stop() whose request line comes after: as a
# client's request is, when the old generation takes its connection in the
# last moment before a roll stops it.
worker, port = serve()
answer = eventlet.spawn(request, port, 0.6)
eventlet.sleep(0.3)  # accepted, its request not sent yet
stopping = eventlet.spawn(worker.stop)
reply = answer.wait()
stopping.wait()
expect('a connection accepted before stop() is answered', answered(reply), repr(reply[:60]))

if errors:
    sys.exit(1)
