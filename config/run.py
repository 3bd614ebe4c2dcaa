"""Run the product's processes together in the foreground (what `make run` does).

    python -m config.run "CMD 1" "CMD 2" ...

Each command runs in its own session, so a Ctrl-C in the terminal reaches only
this supervisor, which then sends every command's process group exactly one
SIGTERM (a second signal would interrupt django-q2's own shutdown half-way)
and waits, killing what has not stopped after a grace period. A command that
fails stops the others; one that ends cleanly (the simulator when real Sinch
credentials are configured) leaves them running.
"""

import os
import shlex
import signal
import subprocess
import sys
import time

GRACE_S = 15


def main(commands: list[str]) -> int:
    children = [
        subprocess.Popen(shlex.split(cmd), start_new_session=True) for cmd in commands
    ]
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        codes = [child.poll() for child in children]
        if None not in codes or any(code not in (None, 0) for code in codes):
            break
        time.sleep(0.2)
    stop()
    deadline = time.monotonic() + GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
