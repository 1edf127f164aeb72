#!/usr/bin/python3
"""A small HTTP/2 (h2c, prior knowledge) origin for test_h2_upstream.c, built on python3-h2.

usage: h2_upstream.py PORT_FILE

Listens on 127.0.0.1:0 and writes the port to PORT_FILE. On every request it first sends GOAWAY
naming that request's stream as the last one it will process, then answers it with 200 and the body
"conn <n> stream <id>": a client that drains gracefully gets every answer and opens a new connection
for the next request. Except /trailers: read the whole request, answer 200 with the body
"got <n> bytes" and, as response trailers, each request trailer renamed x-echo-<name>. Serves until
killed.
"""
import os
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events
from hyperframe.frame import GoAwayFrame


def serve(sock, serial):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    echo = {}  # stream id -> [bytes received, trailers]
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived) and dict(ev.headers).get(":path") == "/trailers":
                    echo[ev.stream_id] = [0, []]
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id in echo:
                    echo[ev.stream_id][1] = [("x-echo-" + k, v) for k, v in ev.headers]
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in echo:
                    n, trailers = echo.pop(ev.stream_id)
                    conn.send_headers(ev.stream_id, [(":status", "200")])
                    conn.send_data(ev.stream_id, ("got %d bytes" % n).encode())
                    conn.send_headers(ev.stream_id, trailers or [("x-echo", "none")], end_stream=True)
                elif isinstance(ev, h2.events.RequestReceived):
                    sid = ev.stream_id
                    # GOAWAY (NO_ERROR) written raw: python-h2 would refuse to answer after its own.
                    goaway = GoAwayFrame(0)
                    goaway.last_stream_id = sid
                    sock.sendall(conn.data_to_send() + goaway.serialize())
                    body = ("conn %d stream %d" % (serial, sid)).encode()
                    conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
                    conn.send_data(sid, body, end_stream=True)
                if isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_id in echo:
                        echo[ev.stream_id][0] += len(ev.data)
            sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        return
    finally:
        sock.close()


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, sys.argv[1])
    serial = 0
    while True:
        s, _ = ls.accept()
        serial += 1
        threading.Thread(target=serve, args=(s, serial), daemon=True).start()


if __name__ == "__main__":
    main()
