#!/usr/bin/env python3
"""The drills' client on the load-balancer host: writes through HAProxy every 10 ms, reads.

A writer sends `MSET PREFIX:w:SEQ SEQ PREFIX:last SEQ` to 127.0.0.1:6381 (HAProxy's write
frontend) every 10 ms and records which SEQ were acknowledged (+OK) and when. A reader
sends `GET PREFIX:last` to 127.0.0.1:6380 every 20 ms; a read is stale when it returns
less than (or nothing instead of) a SEQ whose acknowledgement came more than --stale-ms
before the read was sent: replication lag of a synced replica is far below that, a
replica serving an old snapshot is not. Any error (refused, reset, READONLY, timeout)
counts as not acknowledged and the connection is made again.

  client.py --prefix P --stop-file F --out OUT.json     run until F exists
  client.py --verify OUT.json --keys-from FILE           exit 1 if an acknowledged SEQ's
                                                         key is not among FILE's lines
Standard library only (the host has python3, nothing else).
"""
import argparse
import json
import os
import socket
import sys
import threading
import time


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout, password=None, user=None):
        self.port, self.timeout, self.sock, self.buf = port, timeout, None, b""
        self.password, self.user = password, user

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buf = None, b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def call(self, *args):
        """One command; returns ('ok', value) or ('err', text). Raises on I/O errors."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.sock.settimeout(self.timeout)
            if self.password:
                # An ACL user: AUTH user password; else the default user's password.
                auth = ("AUTH", self.user, self.password) if self.user else ("AUTH", self.password)
                self.sock.sendall(encode(*auth))
                line = self._line()
                if not line.startswith(b"+OK"):
                    raise ConnectionError("AUTH refused: %r" % line)
        self.sock.sendall(encode(*args))
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return "ok", rest.decode()
        if kind == b"-":
            return "err", rest.decode()
        if kind == b":":
            return "ok", int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return "ok", None
            while len(self.buf) < n + 2:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by the server")
                self.buf += data
            val, self.buf = self.buf[:n], self.buf[n + 2 :]
            return "ok", val.decode()
        raise ConnectionError("unexpected reply %r" % line)


def now():
    return time.monotonic()


def run(args):
    acks = []  # (monotonic time, seq) in order
    lock = threading.Lock()
    stop = threading.Event()
    stats = {"errors": 0, "error_kinds": {}, "reads": 0, "read_errors": 0, "stale_reads": 0,
             "stale_examples": []}
    t0 = now()

    def note_error(key, text):
        stats[key] += 1
        kind = text.split(" ")[0][:40]
        stats["error_kinds"][kind] = stats["error_kinds"].get(kind, 0) + 1

    def paced(port, key, period, step):
        """Calls step(conn) every period seconds until stopped (one connection while it
        lasts: a failed call closes it, the next reconnects); catches up at most 1 s."""
        c = Conn(port, 1.0, args.password, args.user)
        nxt = now()
        while not stop.is_set():
            try:
                step(c)
            except (OSError, ConnectionError) as e:
                note_error(key, type(e).__name__)
                c.close()
            nxt += period
            time.sleep(max(0.0, nxt - now()))
            if nxt < now() - 1:
                nxt = now()

    seq = [0]

    def write(c):
        seq[0] += 1
        kind, val = c.call("MSET", "%s:w:%d" % (args.prefix, seq[0]), seq[0],
                           "%s:last" % args.prefix, seq[0])
        if kind == "ok":
            with lock:
                acks.append((now(), seq[0]))
        else:
            note_error("errors", val)
            c.close()

    def read(c):
        sent = now()
        with lock:
            # The newest SEQ acknowledged more than stale_ms before this read.
            floor = 0
            for t, s in reversed(acks):
                if t <= sent - args.stale_ms / 1000.0:
                    floor = s
                    break
        kind, val = c.call("GET", "%s:last" % args.prefix)
        if kind == "ok":
            stats["reads"] += 1
            got = int(val) if val is not None else 0
            if got < floor:
                stats["stale_reads"] += 1
                if len(stats["stale_examples"]) < 10:
                    stats["stale_examples"].append(
                        {"at_s": round(sent - t0, 3), "got": got, "expected_at_least": floor})
        else:
            note_error("read_errors", val)
            c.close()

    def writer():
        paced(6381, "errors", 0.010, write)

    def reader():
        paced(6380, "read_errors", 0.020, read)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    while not os.path.exists(args.stop_file):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()

    # The longest time without an acknowledgement, from the start to the end.
    times = [t0] + [t for t, _ in acks] + [now()]
    gaps = [(b - a, a) for a, b in zip(times, times[1:])]
    longest, at = max(gaps)
    report = dict(stats, acked=len(acks), acked_seqs=[s for _, s in acks],
                  max_gap_ms=round(longest * 1000), max_gap_at_s=round(at - t0, 3),
                  duration_s=round(now() - t0, 3))
    with open(args.out, "w") as f:
        json.dump(report, f)
    print("acked %d, errors %d, longest gap %.2f s at %.2f s, reads %d (stale %d, errors %d)" % (
        len(acks), stats["errors"], longest, at - t0, stats["reads"], stats["stale_reads"],
        stats["read_errors"]))


def verify(args):
    with open(args.verify) as f:
        report = json.load(f)
    keys = set()
    with open(args.keys_from) as f:
        for line in f:
            line = line.strip()
            if ":w:" in line:
                keys.add(int(line.rsplit(":", 1)[1]))
    lost = [s for s in report["acked_seqs"] if s not in keys]
    if lost:
        print("%d of %d acknowledged writes lost, e.g. seq %s" % (
            len(lost), len(report["acked_seqs"]), lost[:10]))
        return 1
    print("0 of %d acknowledged writes lost" % len(report["acked_seqs"]))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--prefix")
    p.add_argument("--stop-file")
    p.add_argument("--out")
    p.add_argument("--stale-ms", type=int, default=1000)
    # With requirepass on Redis: AUTH on every connection (REDIS_PASSWORD in the
    # environment also works, and keeps it off the command line).
    p.add_argument("--password", default=os.environ.get("REDIS_PASSWORD"))
    # With Redis ACL users: the user to AUTH as, with --password (REDIS_USER works too).
    p.add_argument("--user", default=os.environ.get("REDIS_USER"))
    p.add_argument("--verify")
    p.add_argument("--keys-from")
    args = p.parse_args()
    if args.verify:
        return verify(args)
    if not (args.prefix and args.stop_file and args.out):
        p.error("--prefix, --stop-file and --out are required")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
