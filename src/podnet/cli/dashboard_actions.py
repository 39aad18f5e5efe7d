"""The dashboard's actions, wired by the composition root (cli.dashboard): the dashboard
package may not import the CLI, so the CLI hands it this function.

`quarantine` runs `podnet quarantine NS/POD [--undo] --cluster NAME` in this process,
through the same entry point as the terminal (cli.main.main: the same argument checks, the
same InputError handling, exit 2 on bad input), and returns once the command did: the
change in force on every node, the connections cut, the proof probed. What the command
printed is its answer to the page.

Its output is captured by redirecting sys.stdout and sys.stderr for the run; actions are
serialised (one lock) and nothing else in the dashboard's process prints (uvicorn's log
handlers keep the streams they were given at start-up), so no other output is mixed in.
Rejected: running `podnet quarantine` as a child process (the function exists; a child
would also pay the interpreter's start-up per click)."""

from __future__ import annotations

import contextlib
import io
import threading

_LOCK = threading.Lock()


def quarantine(cluster: str, pod: str, undo: bool) -> tuple[int, str]:
    """(exit status, what `podnet quarantine` printed, stdout and stderr in order)."""
    from podnet.cli.main import main

    argv = ["quarantine", pod, "--cluster", cluster] + (["--undo"] if undo else [])
    out = io.StringIO()
    with _LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = main(argv)
        except SystemExit as e:  # argparse refused the arguments
            status = e.code if isinstance(e.code, int) else 2
    return status, out.getvalue()
