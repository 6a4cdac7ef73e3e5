"""Run the `gleaner` command and SIGKILL it (or hold it) at a chosen point, without hooks in the product.

    python tests/fault_runner.py [--kill POINT | --pause POINT:FILE] [--fsize BYTES] -- run --raw DIR ...

POINT is `EVENT:FUNCTION[@CALLER][#N]`:

- EVENT `call`: just before the Nth call of FUNCTION, a dotted name (`tasks.load.stage_run`,
  `os.replace`); `return`: just after the Nth call returned, before its caller goes on.
- @CALLER: count only the calls made by that Python function (`os.replace@tasks.export._publish`).
- N counts from 1 (default 1), over all threads of the process.

At the point the process kills itself with SIGKILL, which nothing can catch or clean up
after, like a power cut or the OOM killer. With --pause it instead creates FILE.paused and
waits until FILE exists (to hold a run in the middle while another one starts).

--fsize BYTES: no file the run writes may grow beyond BYTES (RLIMIT_FSIZE; a write past it
fails with EFBIG, like a write to a full disk).

How: the command and the flow are imported (Prefect, Great Expectations, the tasks), then
every reference to FUNCTION held by a loaded module (`tasks.load.stage_run`, the name
`stage_run` that flows.ingest imported, `os.replace`, `pyarrow.parquet.write_table`) is
replaced by a wrapper that counts the calls. The product is not changed and runs at full
speed (a sys.setprofile function that watches every call, the other way to find the point,
makes a run two to three times slower). A reference the wrapper misses, e.g. one taken by a
module imported later, shows as a run that is not killed: the tests check that it was.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path


def resolve(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"fault_runner: no function {dotted}: {exc}") from exc


def install(spec: str, pause_file: Path | None) -> None:
    event, _, rest = spec.partition(":")
    rest, _, nth = rest.partition("#")
    dotted, _, caller = rest.partition("@")
    if event not in ("call", "return") or not dotted:
        raise SystemExit(f"fault_runner: bad point {spec!r}")
    target = resolve(dotted)
    caller_code = inspect.unwrap(resolve(caller)).__code__ if caller else None  # through @contextmanager
    wanted, seen, count_lock = int(nth or 1), 0, threading.Lock()

    def reached() -> None:
        nonlocal seen
        with count_lock:
            seen += 1
            if seen != wanted:
                return
        if pause_file is None:
            os.kill(os.getpid(), signal.SIGKILL)
        os.write(2, f"fault_runner: paused at {spec} until {pause_file} exists\n".encode())
        pause_file.with_name(pause_file.name + ".paused").touch()
        while not pause_file.exists():
            time.sleep(0.05)

    @functools.wraps(target)
    def wrapper(*args, **kwargs):
        counts = caller_code is None or sys._getframe(1).f_code is caller_code
        if counts and event == "call":
            reached()
        result = target(*args, **kwargs)
        if counts and event == "return":
            reached()
        return result

    replaced = 0
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if value is target:
                namespace[name] = wrapper
                replaced += 1
    if not replaced:
        raise SystemExit(f"fault_runner: no module holds {dotted}")


def limit_file_size(limit: int) -> None:
    """Files may not grow beyond `limit` bytes: a write past it fails with EFBIG, as on a full
    disk. SIGXFSZ is ignored so that the write raises instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def main(argv: list[str]) -> int:
    usage = "usage: fault_runner.py [--kill POINT | --pause POINT:FILE] [--fsize BYTES] -- gleaner arguments"
    if "--" not in argv:
        raise SystemExit(usage)
    split = argv.index("--")
    options, gleaner_args = dict(zip(argv[:split:2], argv[1:split:2])), argv[split + 1:]
    if split % 2 or not set(options) <= {"--kill", "--pause", "--fsize"} or {"--kill", "--pause"} <= set(options):
        raise SystemExit(usage)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import gleaner.cli  # first, as the command does: it sets Prefect's environment
    import flows.ingest  # noqa: F401 - Prefect, Great Expectations, pandas, DuckDB, the tasks

    if "--kill" in options:
        install(options["--kill"], None)
    if "--pause" in options:
        spec, _, pause_file = options["--pause"].rpartition(":")
        install(spec, Path(pause_file))
    if "--fsize" in options:
        limit_file_size(int(options["--fsize"]))
    return gleaner.cli.main(gleaner_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
