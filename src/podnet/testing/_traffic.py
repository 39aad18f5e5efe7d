"""A connect loop toward one pod from its node, for "when did answers stop and resume?"
(a daemon killed under traffic: the watchdog test and bench/restart_bench.py)."""

from __future__ import annotations

import os
import socket
import threading
import time

from podnet.datapath import netns


class ConnectLoop(threading.Thread):
    """Connects to `ip`:`port` from inside `node_ns` every 10 ms, sends a line and notes
    whether an answer came (starting with `expect`, when given) and when."""

    def __init__(self, node_ns: str, ip: str, port: int, expect: bytes = b"") -> None:
        super().__init__(daemon=True)
        self.node_ns, self.ip, self.port, self.expect = node_ns, ip, port, expect
        self.done = threading.Event()
        self.answers: list[tuple[float, bool]] = []

    def run(self) -> None:
        fd = netns.open_fd(self.node_ns)
        try:
            while not self.done.is_set():
                with netns.entered_fd(fd):
                    s = socket.socket()
                s.settimeout(0.3)
                try:
                    s.connect((self.ip, self.port))
                    s.sendall(b"\n")
                    reply = s.recv(100)
                    ok = bool(reply) and reply.startswith(self.expect)
                except OSError:
                    ok = False
                finally:
                    s.close()
                self.answers.append((time.monotonic(), ok))
                time.sleep(0.01)
        finally:
            os.close(fd)

    def back_after(self, t0: float) -> float | None:
        """Seconds from t0 to the first answer after the first miss that followed t0: 0.0
        when none was missed, None when answers never came back."""
        after = [(t, ok) for t, ok in self.answers if t >= t0]
        first_miss = next((t for t, ok in after if not ok), None)
        if first_miss is None:
            return 0.0
        back = next((t for t, ok in after if ok and t > first_miss), None)
        return None if back is None else back - t0
