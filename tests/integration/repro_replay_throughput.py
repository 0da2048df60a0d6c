"""REPRODUCTION (not a test; fails today): after an outage, a disk queue drains at one
request at a time, whatever the receiver could take.

2 targets x 10k series @1s (20k samples/s), storage.path set, a receiver that answers
every request after 200 ms (an AMP-like latency) but serves any number at once. Before
the outage 6 shards deliver 20k/s. After an 8 s 503 outage the single replayer
(spill.c, rw_replayer_main) sends one disk record (2000 samples) per 200 ms, about
10k samples/s less than what arrives, and while spilling every new sample goes to disk
behind it, so the backlog grows for ever (scrapeship_remote_disk_samples climbs
~14k/s, scrapeship_remote_spilling stays 1) until max_disk_bytes drops the oldest.
The README says the backlog "drains as fast as the receiver accepts it".

Run: python3 tests/integration/repro_replay_throughput.py   (about 80 s)
A fix needs concurrent replay that keeps per-series order, e.g. tag each disk record
with the series queues it holds and let records with disjoint queue sets go in flight
together (or replay per queue).
"""
import http.server
import os
import socketserver
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import delivery as dl  # noqa: E402

LATENCY = 0.2


def start_receiver():
    mode = {"m": "ok"}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/-/toggle":
                mode["m"] = "503" if mode["m"] == "ok" else "ok"
                code = 200
            else:
                time.sleep(LATENCY)
                code = 204 if mode["m"] == "ok" else 503
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = S(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def main():
    t = dl.Targets([("big%d" % i, 10000, i) for i in range(2)])
    port = start_receiver()
    cfg = """global: {scrape_interval: 1s, scrape_timeout: 900ms}
scrape_configs:
%s
remote_write:
  - url: http://127.0.0.1:%d/api/v1/write
    name: r
    metadata_config: {send: false}
storage: {path: %s}
""" % (t.scrape_configs(), port, h.tmpdir("ss-q-"))
    run = dl.Run(cfg)

    def toggle():
        urllib.request.urlopen("http://127.0.0.1:%d/-/toggle" % port, data=b"x").read()

    def show(tag):
        m = run.metrics()

        def g(n):
            return sum(v for (k, _), v in m.items() if k == n)
        print("%-12s in %8d sent %8d disk %8d spilling %d shards %d" % (
            tag, g("scrapeship_remote_samples_in_total"), g("scrapeship_remote_samples_total"),
            g("scrapeship_remote_disk_samples"), g("scrapeship_remote_spilling"), g("scrapeship_remote_shards")),
            flush=True)
        return g("scrapeship_remote_disk_samples")
    try:
        for i in range(4):
            time.sleep(3)
            show("normal %d" % i)
        toggle()
        time.sleep(8)
        show("outage")
        toggle()
        first = None
        for i in range(8):
            time.sleep(5)
            d = show("recovery %d" % i)
            first = d if first is None else first
        print("REPRODUCED: the disk backlog grows after the receiver recovered" if d > first else "backlog drains")
    finally:
        run.stop()


if __name__ == "__main__":
    main()
