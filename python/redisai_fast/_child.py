"""What a `Server` runs in its child process: the server's own command line, plus a thread that
shuts the server down cleanly (SIGTERM) when the parent goes away and the stdin pipe it holds
closes, so no server outlives the process that started it."""

from __future__ import annotations

import os
import signal
import sys
import threading


def _stop_when_parent_exits(fd: int) -> None:
    # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader's lock makes
    # the interpreter abort at exit
    try:
        while os.read(fd, 4096):
            pass
    except OSError:  # not readable: the parent is gone just the same
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    watch = threading.Thread(target=_stop_when_parent_exits, args=(sys.stdin.fileno(),), name="parent-watch", daemon=True)
    watch.start()
    from redisai_fast.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
