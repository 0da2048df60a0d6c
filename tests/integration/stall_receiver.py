#!/usr/bin/python3
"""stall_receiver.py: fake_receiver.py with a switch instead of a script.

The same decoding, spec checks and JSON-lines request log as fake_receiver.py (every
series and sample of every request, with the status answered), but what a write
request gets is decided by a mode the test sets at any time:

    POST /-/mode {"mode": "ok"}     answer 200 (the default)
    POST /-/mode {"mode": "503"}    answer 503 at once: a receiver that is down
    POST /-/mode {"mode": "hang"}   do not answer until the mode changes (at most
                                    MAX_HANG s), then answer as the new mode says

GET /-/state reports the mode and the number of requests answered. As a module,
StallReceiver starts it as a subprocess and reads its log (a fake_receiver.FakeReceiver).
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_receiver as fr  # noqa: E402

MAX_HANG = 120.0
MODES = ("ok", "503", "hang")


class ModeScript(fr.Script):
    """fake_receiver's Script interface, answering by the current mode."""

    def __init__(self):
        super().__init__([])
        self.cv = threading.Condition()
        self.mode = "ok"

    def set_mode(self, mode):
        with self.cv:
            self.mode = mode
            self.cv.notify_all()

    def next_for(self, kind):
        deadline = time.time() + MAX_HANG
        with self.cv:
            while self.mode == "hang" and time.time() < deadline:
                self.cv.wait(0.2)
            mode = self.mode
        if mode == "ok":
            return {}, None
        return {"status": 503, "body": "stall_receiver: stalled (%s)" % mode}, -1

    def state(self):
        with self.cv:
            return {"mode": self.mode, "used": 0, "left": 0}


class Handler(fr.Handler):
    def do_POST(self):
        if self.path == "/-/mode":
            n = int(self.headers.get("Content-Length") or 0)
            req = json.loads(self.rfile.read(n) or b"{}")
            mode = req.get("mode")
            if mode not in MODES:
                self.reply(400, b"mode must be one of ok, 503, hang\n")
                return
            self.server.script.set_mode(mode)
            self.reply(200, b"ok\n")
            return
        super().do_POST()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log", required=True)
    ap.add_argument("--script", default="[]", help="ignored (FakeReceiver passes one)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ss-stallrecv-")
    try:
        pb = fr.compile_schema(tmp)
        srv = fr.Receiver(("127.0.0.1", a.port), ModeScript(), a.log, pb)
        srv.RequestHandlerClass = Handler
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown, daemon=True).start())
        port = srv.server_address[1]
        if a.port_file:
            with open(a.port_file + ".tmp", "w") as f:
                f.write("%d\n" % port)
            os.rename(a.port_file + ".tmp", a.port_file)
        print("listening on 127.0.0.1:%d" % port, flush=True)
        srv.serve_forever(poll_interval=0.1)
        srv.server_close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class StallReceiver(fr.FakeReceiver):
    """Start with .start(); switch with .set_mode(); read with .records()."""

    def start(self, timeout=30):
        h = fr._harness()
        port_file = os.path.join(self.dir, "port")
        self.proc = h.start(["/usr/bin/python3", os.path.abspath(__file__), "--port", str(self.port),
                             "--port-file", port_file, "--log", self.log_path],
                            os.path.join(self.dir, "receiver.log"))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(port_file):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("stall receiver did not start: " + open(os.path.join(self.dir, "receiver.log")).read())

    def set_mode(self, mode):
        h = fr._harness()
        h.http_get("http://127.0.0.1:%d/-/mode" % self.port, data=json.dumps({"mode": mode}).encode(),
                   timeout=10)


if __name__ == "__main__":
    main()
