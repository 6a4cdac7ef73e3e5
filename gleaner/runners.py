"""The task runner that runs the ingest flow's per-batch tasks, chosen on the command line.

    process  Prefect's ProcessPoolTaskRunner: N worker processes on this machine (default)
    thread   Prefect's ThreadPoolTaskRunner: N threads of this process, for debugging
    dask     prefect-dask's DaskTaskRunner: the workers of a running Dask cluster
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

# Prefect is imported where it is used: `gleaner profile suggest` runs without it, and
# `gleaner run --quiet` sets Prefect's log level before Prefect reads its settings.
RUNNERS = ("process", "thread", "dask")
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class RunnerError(ValueError):
    """Options that name no runnable task runner; the message is one line for the user."""


def die_with_parent() -> None:
    """Make this pool process get SIGKILL when the command dies (Linux), however it dies.

    A command killed by SIGKILL cannot stop its pool, and its workers, blocked on a queue
    with Prefect's threads alive, were seen to live on for good (about 400 MB each)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def default_workers() -> int:
    return os.cpu_count() or 1


def build_task_runner(kind: str, workers: int | None = None, dask_address: str | None = None,
                      api_url: str | None = None) -> TaskRunner:
    """The task runner for `--task-runner kind`; api_url is the Prefect API the run reports to."""
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    if kind == "dask":
        if workers is not None:
            raise RunnerError("--workers applies to --task-runner process and thread; "
                              "a Dask cluster runs on the workers it was started with")
        if not dask_address:
            raise RunnerError("--task-runner dask needs --dask-address tcp://HOST:PORT, "
                              "the scheduler of a running Dask cluster")
        if not api_url:
            # Without a server each Dask worker starts a temporary Prefect server of its own,
            # records its task runs there instead of with the flow run, and may leave it running.
            raise RunnerError("--task-runner dask needs PREFECT_API_URL: the address of a Prefect server "
                              "that this command and the Dask workers can reach")
        from prefect_dask import DaskTaskRunner  # imports distributed: only when asked for

        return DaskTaskRunner(address=dask_address)
    if dask_address:
        raise RunnerError("--dask-address applies to --task-runner dask only")
    if kind == "process":
        return ProcessPoolTaskRunner(max_workers=workers or default_workers(), initializer=die_with_parent)
    if kind == "thread":
        return ThreadPoolTaskRunner(max_workers=workers or default_workers())
    raise RunnerError(f"unknown task runner {kind!r}: choose one of {', '.join(RUNNERS)}")


class ServerStartError(RuntimeError):
    """The temporary Prefect server did not start; the message is one line for the user."""


# Prefect's own default is 20 s, counted in its polling sleeps. A first start on a fresh
# PREFECT_HOME migrates the database (11 s on this machine when idle), and a busy machine
# took longer than 20 s: the run died with a traceback before it had read a file.
SERVER_STARTUP_SECONDS = 120


@contextmanager
def prefect_api(while_starting: Callable[[], None] | None = None) -> Iterator[None]:
    """Run the block with a Prefect API: PREFECT_API_URL's, or a temporary server started here.

    Without PREFECT_API_URL Prefect starts a temporary server in the process that first
    needs one: in each pool process too, as it unpacks a task run (about 10 s each here,
    every one on the same database). Started here first, its address goes to the pool
    with the run's settings and there is one temporary server, stopped when this process exits.

    The server takes seconds to start in its own process while this one only waits for it:
    `while_starting` runs in a thread meanwhile, and the block begins once both are done.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the instance Prefect's own client would start here
    meanwhile = threading.Thread(target=while_starting, name="while-server-starts", daemon=True) \
        if while_starting else None
    if meanwhile:
        meanwhile.start()
    try:
        server.start(timeout=SERVER_STARTUP_SECONDS)
    except Exception as exc:  # Prefect raises RuntimeError or httpx's HTTPStatusError here
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ServerStartError(f"the temporary Prefect server did not start ({first_line[:300]}); "
                               "set PREFECT_API_URL to use a running server") from exc
    finally:
        if meanwhile:
            meanwhile.join()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield
