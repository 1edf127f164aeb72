#!/usr/bin/python3
"""HTTP/2 clients that misbehave on purpose, for test_h2_downstream.c.

usage: h2_abuse.py CASE HOST PORT [ARG]

Frames are written raw (hyperframe + hpack from Debian's python3-h2) so that a case can break the
rules a well-behaved library would enforce. Each case prints one line the C test checks:
  closed goaway=<code|none>   the server ended the connection (EOF or reset), GOAWAY code if seen
  sent <bytes>                stall_upload: bytes the server let us send before its windows closed
  status <code> / second <code>  oversized_headers
  received <bytes> rss_kb <kB>   stall_download (ARG: remora's pid, whose RSS is read while stalled)
  goaway <code> last <id> status <code>   drain (ARG: PID@ADMIN of remora; the case sends it SIGTERM
                              once the admin's stats show the request in flight)
Exit status 0 unless the case could not run at all.
"""
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
from hpack import Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame, PingFrame, RstStreamFrame,
                              SettingsFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(host, port):
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def request_headers(authority, path, method="GET", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path)] + list(extra)


def read_until_closed(s, deadline_s=30.0):
    """Reads until EOF or reset; returns the GOAWAY error code seen, or None."""
    buf = b""
    goaway = None
    s.settimeout(deadline_s)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        except socket.timeout:
            print("still open after %.0f s" % deadline_s)
            sys.exit(0)
        if not chunk:
            break
        buf += chunk
        # Frame walk: 9-byte header (length, type, flags, stream id), GOAWAY is type 7.
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            if buf[3] == 7 and length >= 8:
                goaway = int.from_bytes(buf[9 + 4:9 + 8], "big")
            buf = buf[9 + length:]
    return goaway


def report_closed(goaway):
    print("closed goaway=%s" % ("none" if goaway is None else goaway))


def send_in_background(s, data):
    """Writes data from a thread (the server may stop reading); errors end the thread quietly."""
    def run():
        try:
            s.sendall(data)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def case_rapid_reset(host, port):
    s = connect(host, port)
    enc = Encoder()
    out = [PREFACE, SettingsFrame(0).serialize()]
    for i in range(600):
        sid = 1 + 2 * i
        hf = HeadersFrame(sid)
        hf.data = enc.encode(request_headers("%s:%d" % (host, port), "/delay/2000"))
        hf.flags.add("END_HEADERS")
        hf.flags.add("END_STREAM")
        out.append(hf.serialize())
        rst = RstStreamFrame(sid)
        rst.error_code = 8  # CANCEL
        out.append(rst.serialize())
    t = send_in_background(s, b"".join(out))
    report_closed(read_until_closed(s))
    t.join(5)


def case_continuation_flood(host, port):
    s = connect(host, port)
    enc = Encoder()
    block = enc.encode(request_headers("%s:%d" % (host, port), "/status/200"))
    hf = HeadersFrame(1)
    hf.data = block
    hf.flags.add("END_STREAM")  # no END_HEADERS: CONTINUATION frames follow
    out = [PREFACE, SettingsFrame(0).serialize(), hf.serialize()]
    filler = enc.encode([("x-filler", "a")])
    for _ in range(20000):
        cf = ContinuationFrame(1)
        cf.data = filler
        out.append(cf.serialize())
    t = send_in_background(s, b"".join(out))
    report_closed(read_until_closed(s))
    t.join(5)


def case_slow_headers(host, port):
    s = connect(host, port)
    hf = HeadersFrame(1)
    hf.data = Encoder().encode(request_headers("%s:%d" % (host, port), "/status/200"))
    hf.flags.add("END_STREAM")  # no END_HEADERS, and no CONTINUATION ever follows
    s.sendall(PREFACE + SettingsFrame(0).serialize() + hf.serialize())
    report_closed(read_until_closed(s))


def flood(host, port, frame_bytes, count):
    s = connect(host, port)
    # A tiny receive buffer and no reading: the server's acknowledgements pile up on its side.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    t = send_in_background(s, PREFACE + SettingsFrame(0).serialize() + frame_bytes * count)
    t.join(60)
    report_closed(read_until_closed(s))


def case_ping_flood(host, port):
    p = PingFrame(0)
    p.opaque_data = b"12345678"
    flood(host, port, p.serialize(), 500000)


def case_settings_flood(host, port):
    flood(host, port, SettingsFrame(0).serialize(), 500000)


def case_empty_data_flood(host, port):
    s = connect(host, port)
    enc = Encoder()
    hf = HeadersFrame(1)
    hf.data = enc.encode(request_headers("%s:%d" % (host, port), "/sink", "POST"))
    hf.flags.add("END_HEADERS")
    out = [PREFACE, SettingsFrame(0).serialize(), hf.serialize()]
    empty = DataFrame(1)
    empty.data = b""
    out += [empty.serialize()] * 10000
    t = send_in_background(s, b"".join(out))
    report_closed(read_until_closed(s))
    t.join(5)


def case_hpack_bomb(host, port):
    s = connect(host, port)
    enc = Encoder()
    big = ("x-bomb", "b" * 3900)  # fits the 4096-byte dynamic table: later copies cost one byte each
    hf = HeadersFrame(1)
    hf.data = enc.encode(request_headers("%s:%d" % (host, port), "/status/200") + [big] * 2000)
    hf.flags.add("END_HEADERS")
    hf.flags.add("END_STREAM")
    print("header block of %d bytes decodes to about %d bytes" % (len(hf.data), 2000 * 3940))
    t = send_in_background(s, PREFACE + SettingsFrame(0).serialize() + hf.serialize())
    report_closed(read_until_closed(s))
    t.join(5)


def case_oversized_headers(host, port):
    s = connect(host, port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    authority = "%s:%d" % (host, port)
    # About 12 KiB of fields: over the 8 KiB limit, under the connection-killing bound.
    big = [("x-big-%d" % i, "v" * 3000) for i in range(4)]
    # python-h2 enforces the server's SETTINGS_MAX_HEADER_LIST_SIZE only if told to; send anyway.
    conn.send_headers(1, request_headers(authority, "/status/200") + big, end_stream=True)
    s.sendall(conn.data_to_send())
    statuses = {}
    done = set()
    sent_second = False
    end = time.monotonic() + 30
    while time.monotonic() < end and len(done) < 2:
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                statuses[ev.stream_id] = dict(ev.headers).get(":status")
            if isinstance(ev, h2.events.StreamEnded) or isinstance(ev, h2.events.StreamReset):
                done.add(ev.stream_id)
        if 1 in done and not sent_second:
            sent_second = True
            conn.send_headers(3, request_headers(authority, "/status/200"), end_stream=True)
        s.sendall(conn.data_to_send())
    print("status %s" % statuses.get(1))
    print("second %s" % statuses.get(3))


def case_stall_upload(host, port):
    s = connect(host, port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    conn.send_headers(1, request_headers("%s:%d" % (host, port), "/stalled", "POST"))
    s.sendall(conn.data_to_send())
    chunk = b"z" * 16384
    sent = 0
    limit = 256 * 1024 * 1024
    quiet_s = 3.0  # no window opened for this long: the server is holding back
    s.settimeout(0.2)
    last_progress = time.monotonic()
    while sent < limit and time.monotonic() - last_progress < quiet_s:
        window = conn.local_flow_control_window(1)
        n = min(window, len(chunk), conn.max_outbound_frame_size)
        if n > 0:
            conn.send_data(1, chunk[:n])
            s.sendall(conn.data_to_send())
            sent += n
            last_progress = time.monotonic()
            continue
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                print("sent %d (stream ended: %r)" % (sent, ev))
                return
        s.sendall(conn.data_to_send())
    print("sent %d" % sent)


def new_client(host, port, settings=None):
    s = connect(host, port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    if settings:
        conn.update_settings(settings)
    s.sendall(conn.data_to_send())
    return s, conn


def case_too_many_streams(host, port):
    # Raw frames: python-h2 would respect the server's limit, which is the point to ignore.
    s = connect(host, port)
    enc = Encoder()
    ack = SettingsFrame(0)
    ack.flags.add("ACK")
    out = [PREFACE, SettingsFrame(0).serialize()]
    s.sendall(b"".join(out))
    # Read the server's SETTINGS first (so its limit is in force), acknowledge it, then open 80.
    buf = b""
    while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[0:3], "big"):
        buf += s.recv(65536)
    n = 80
    frames = [ack.serialize()]
    for i in range(n):
        hf = HeadersFrame(1 + 2 * i)
        hf.data = enc.encode(request_headers("%s:%d" % (host, port), "/delay/300"))
        hf.flags.add("END_HEADERS")
        hf.flags.add("END_STREAM")
        frames.append(hf.serialize())
    t = send_in_background(s, b"".join(frames))
    report_closed(read_until_closed(s))
    t.join(5)



def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def case_stall_download(host, port, pid):
    s, conn = new_client(host, port)
    conn.send_headers(1, request_headers("%s:%d" % (host, port), "/bytes/209715200"), end_stream=True)
    s.sendall(conn.data_to_send())
    received = 0
    s.settimeout(0.2)
    last = time.monotonic()
    # Never acknowledge DATA: the server may send one stream window, then it must wait.
    while time.monotonic() - last < 3.0:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                received += len(ev.data)
                last = time.monotonic()
    print("received %d rss_kb %d" % (received, rss_kb(int(pid))))


def case_drain(host, port, arg):
    import os
    import signal
    import urllib.request
    pid, admin = arg.split("@", 1)
    s, conn = new_client(host, port)
    conn.send_headers(1, request_headers("%s:%d" % (host, port), "/delay/1500"), end_stream=True)
    s.sendall(conn.data_to_send())
    # Start the graceful shutdown only once remora has the request in flight (the upstream holds
    # it 1.5 s): the admin's gauge is read until it says so, with a deadline (each read is one
    # loopback HTTP exchange, which paces the loop).
    end = time.monotonic() + 10
    while True:
        stats = urllib.request.urlopen("http://%s/stats?filter=downstream_rq_active" % admin,
                                       timeout=5).read().decode()
        if "http.ingress_http.downstream_rq_active: 1" in stats:
            break
        if time.monotonic() > end:
            print("request never became active")
            return
    os.kill(int(pid), signal.SIGTERM)
    # Raw frames from here: python-h2 stops accepting frames once it has seen GOAWAY.
    from hpack import Decoder
    dec = Decoder()
    goaway = last = status = None
    buf = b""
    end = time.monotonic() + 30
    while time.monotonic() < end and (status is None or goaway is None):
        data = s.recv(65536)
        if not data:
            break
        buf += data
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[0:3], "big"):
            length = int.from_bytes(buf[0:3], "big")
            ftype, sid, payload = buf[3], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + length]
            if ftype == 7:
                last = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
                goaway = int.from_bytes(payload[4:8], "big")
            elif ftype == 1 and sid == 1:
                status = dict(dec.decode(payload)).get(":status")
            buf = buf[9 + length:]
    print("goaway %s last %s status %s" % (goaway, last, status))


CASES = {
    "rapid_reset": case_rapid_reset,
    "continuation_flood": case_continuation_flood,
    "ping_flood": case_ping_flood,
    "settings_flood": case_settings_flood,
    "empty_data_flood": case_empty_data_flood,
    "hpack_bomb": case_hpack_bomb,
    "oversized_headers": case_oversized_headers,
    "stall_upload": case_stall_upload,
    "too_many_streams": case_too_many_streams,
    "slow_headers": case_slow_headers,
    "stall_download": case_stall_download,
    "drain": case_drain,
}

if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in CASES:
        sys.stderr.write(__doc__)
        sys.exit(2)
    CASES[sys.argv[1]](sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
