"""Gleaner's benchmark: throughput, rerun cost, memory and Prefect's share, on a generated corpus.

    .venv/bin/python bench/run.py [--mb 100] [--seed 1] [--work DIR] [--only PARTS] [--no-profile]

Generates (or reuses) a corpus of --mb megabytes with bench/generate.py, then measures:

  core         extract + clean + segment of every dump in one process, no Prefect, no gates
               (MB per CPU-second = MB/s on one core; per step and per format)
  e2e          `gleaner run` as a subprocess into a fresh warehouse, default task runner (a
               process pool, one worker per CPU): MB/s, CPU, peak RSS of the process and of
               its process tree (pool workers, the temporary Prefect server) summed
  workers1     the same with `--workers 1` (when the CLI has the option), for comparison
  incremental  the acceptance figures of "a run costs what its new dumps cost", on the e2e run's
               corpus and warehouse: EMPTY (`gleaner run` over an empty --raw into a fresh
               warehouse, median of 3 runs into it: the fixed cost of a run), RERUN (nothing
               new, median of 3), +1% (1% more dumps: its time, and the bytes it writes into
               the warehouse); checks RERUN <= EMPTY + 1 s, PLUS - EMPTY <= 5% of (FULL -
               EMPTY) + 1 s, bytes written by +1% <= 10% of the warehouse; then another 1% by
               `run.py pipeline` for its per-step times (`--only acceptance` is the same part)
  pipeline     the flow's work without Prefect: the plain functions the tasks call, in the
               flow's order, the batches in a process pool of the same size; per-step times;
               Prefect's share = 1 - its wall time / the end-to-end run's
  profile      pyinstrument over that work without Prefect: the main process and every
               batch in its worker, combined; top functions, the repo's functions, by step
               and by package

Every full run starts its own fresh warehouse (the incremental runs use the e2e run's, and
EMPTY its own); `gleaner run` runs as a user runs it (a
temporary local Prefect server, PREFECT_API_URL unset) with its own PREFECT_HOME below --work,
after two warm-up runs on the five seed dumps (so the first-run database migration of
Prefect's server is measured apart). The corpus is read once before the end-to-end run, so
that its files are read from the page cache. Results go to
stdout and to WORK/results-<mb>mb.{txt,json}; profiles to WORK/profile-*.html.

Internal modes (run in child processes): `run.py core RAW OUT.json [--profile HTML]`,
`run.py pipeline RAW WAREHOUSE OUT.json [--workers N] [--batch-mb MB] [--profile HTML]` and
`run.py cli OUT.json HTML -- ARGS`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
GLEANER = VENV_BIN / "gleaner"
TOP = 15  # functions listed per profile summary
BATCH_MB = 16.0  # `gleaner run`'s default --batch-mb (the bench reads it from `gleaner run --help`)

# name: (target as printed, threshold, higher is better)
TARGETS = {
    "e2e_mb_s": (">= 25 MB/s", 25.0, True),
    "core_mb_s_per_core": (">= 60 MB/s per core", 60.0, True),
    "peak_rss": ("<= 1.5 GB (1536 MB)", 1536.0, False),
    "rss_flat": ("1 GB corpus <= 100 MB corpus + 100 MB", 100.0, False),
    "rerun": ("<= 3 s per 10,000 dumps", 3.0, False),
    "plus_1pct": ("~1% of a full run (met: <= 1.5%)", 1.5, False),
    "prefect_share": ("<= 10% of the run", 10.0, False),
}


def verdict(value: float, name: str) -> str:
    """'met', or 'NOT met (x of target)' with x the value / the target's threshold."""
    _, threshold, higher = TARGETS[name]
    if (value >= threshold) if higher else (value <= threshold):
        return "met"
    return f"NOT met ({value / threshold:.3g}x of target)"


# --- machine ---------------------------------------------------------------------------------

def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if line[3:].startswith(("flows/", "tasks/", "gleaner/"))]
    return {
        "cpu": cpu,
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "commit": commit,
        "uncommitted": changed,  # the product's files changed since the commit
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- measuring a child process and its process tree -----------------------------------------

def _proc_kb(pid: int, file: str, field: str) -> int:
    """A kB figure of /proc/PID/FILE (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _rss_kb(pid: int) -> int:
    return _proc_kb(pid, "status", "VmRSS:")


def _pss_kb(pid: int) -> int:
    return _proc_kb(pid, "smaps_rollup", "Pss:")


def _anon_kb(pid: int) -> int:
    """The process's own memory (heap, stacks): its RSS without the file-backed pages it maps
    (shared libraries, tantivy's memory-mapped segments), which the kernel may drop and read again."""
    return _proc_kb(pid, "status", "RssAnon:")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    """The CPU seconds (user + system) the process has used so far; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime: fields 14 and 15
    except (OSError, ValueError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children[ppid].append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _role(pid: int) -> str:
    """What a descendant of the measured process is, from its command line."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if "uvicorn" in cmd or "prefect.server" in cmd or "prefect server" in cmd:
        return "Prefect server"
    if "resource_tracker" in cmd:
        return "other"
    if "multiprocessing" in cmd or "spawn_main" in cmd:
        return "pool workers"
    return "other"


class RssSampler(threading.Thread):
    """Samples every `interval` s the RSS of a process and the sum of the RSS of it and all its
    descendants (and, every other sample, the sum of their PSS, which counts shared pages once,
    and of their anonymous memory), and the CPU time each process has used when last seen
    (a process that exits loses what it used after its last sample: up to `interval`)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_main_kb = self.peak_tree_kb = self.peak_tree_pss_kb = self.peak_tree_anon_kb = 0
        self.peak_parts: dict[str, int] = {}  # RSS by role at the tree's peak
        self.peak_tree_at = 0.0  # s since start
        self.max_processes = 1
        self.samples: list[tuple[float, int, int]] = []  # (s since start, main RSS kB, tree RSS kB)
        self._roles: dict[int, str] = {}
        self._cpu: dict[int, float] = {}  # pid -> CPU s when last seen
        self._halt = threading.Event()
        self._t0 = time.perf_counter()

    def run(self) -> None:
        tick = 0
        while not self._halt.is_set():
            main = _rss_kb(self.pid)
            parts = {"gleaner process": main}
            pids = _descendants(self.pid)
            for pid in pids:
                if pid not in self._roles:
                    self._roles[pid] = _role(pid)
                role = self._roles[pid]
                parts[role] = parts.get(role, 0) + _rss_kb(pid)
            tree = sum(parts.values())
            for pid in (self.pid, *pids):
                if (cpu := _cpu_s(pid)) is not None:
                    self._cpu[pid] = cpu
            self.max_processes = max(self.max_processes, 1 + len(pids))
            self.peak_main_kb = max(self.peak_main_kb, main)
            if tree > self.peak_tree_kb:
                self.peak_tree_kb, self.peak_parts = tree, parts
                self.peak_tree_at = time.perf_counter() - self._t0
            if tick % 2 == 0:
                self.peak_tree_pss_kb = max(self.peak_tree_pss_kb,
                                            _pss_kb(self.pid) + sum(_pss_kb(p) for p in pids))
                self.peak_tree_anon_kb = max(self.peak_tree_anon_kb,
                                             _anon_kb(self.pid) + sum(_anon_kb(p) for p in pids))
            self.samples.append((round(time.perf_counter() - self._t0, 1), main, tree))
            tick += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds by role: the measured process, and its descendants by _role."""
        roles: dict[str, float] = defaultdict(float)
        for pid, cpu in self._cpu.items():
            roles["gleaner process" if pid == self.pid else self._roles.get(pid, "other")] += cpu
        return {role: round(cpu, 1) for role, cpu in roles.items()}


def measure(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run cmd, stdout and stderr to `log`; its wall time, exit code, peak RSS and CPU time
    (the process's and its waited-for descendants': pool workers, the temporary server)."""
    load_before = os.getloadavg()[0]
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        sampler = RssSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "exit": proc.returncode,
        "peak_rss_mb": sampler.peak_main_kb / 1024,
        # ru_maxrss of wait4: the largest RSS any single process of the tree reached (kB on Linux)
        "largest_process_rss_mb": usage.ru_maxrss / 1024,
        "peak_rss_tree_sum_mb": max(sampler.peak_tree_kb, sampler.peak_main_kb) / 1024,
        "peak_rss_tree_parts_mb": {k: round(v / 1024) for k, v in sampler.peak_parts.items()},
        "peak_rss_tree_at_s": round(sampler.peak_tree_at, 1),
        "peak_pss_tree_sum_mb": sampler.peak_tree_pss_kb / 1024,
        "peak_anon_tree_sum_mb": sampler.peak_tree_anon_kb / 1024,
        "max_processes": sampler.max_processes,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "cpu_by_role_s": sampler.cpu_by_role(),
        "rss_samples": sampler.samples,
        "load_1min": (round(load_before, 2), round(os.getloadavg()[0], 2)),  # before, after
    }


# --- the core steps in one process (child mode) --------------------------------------------

def core_child(raw: Path, out: Path, profile_html: Path | None) -> None:
    """The batch's making steps (tasks/batch.py: extract, clean, segment) over every dump in
    batches of `gleaner run`'s size, in this process, without gates or staging: each step timed
    per format (a batch's text dumps and its HTML dumps go through the steps apart)."""
    t_import = time.perf_counter()
    from tasks.batch import GateStep, Ledger, StageStep, batch_steps
    from tasks.discover import batches, dump_format, walk_files
    from tasks.models import Dump
    from tasks.profile import load_profile

    profile = load_profile("caci")
    core_steps = [step for step in batch_steps(profile, out.parent, 0) if not isinstance(step, (GateStep, StageStep))]
    import_s = time.perf_counter() - t_import
    dumps = []
    found, _ = walk_files(raw)
    for source_file, name in found:
        path = Path(name)
        fmt = dump_format(path)
        if fmt:
            dumps.append(Dump(source_file, path, "", path.stat().st_size, fmt))

    profiler = None
    if profile_html:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.001)
        profiler.start()
    steps = defaultdict(float)  # wall seconds
    cpu = defaultdict(float)  # CPU seconds of this process: what other processes on the machine cannot inflate
    by_format: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    ledger = Ledger()
    articles = 0
    clock, cpu_clock = time.perf_counter, time.process_time
    started, cpu_started = clock(), cpu_clock()
    for batch in batches(dumps, int(BATCH_MB * 1e6)):
        for kind in ("html", "txt"):
            records: list = [dump for dump in batch if dump.format.startswith("html") == (kind == "html")]
            f = by_format[kind]
            f["bytes"] += sum(dump.bytes for dump in records)
            f["dumps"] += len(records)
            for step in core_steps:
                if not records:  # none of this format, or all refused
                    break
                t0, c0 = clock(), cpu_clock()
                records = step(records, ledger)
                steps[step.name] += clock() - t0
                cpu[step.name] += cpu_clock() - c0
                f[step.name] += cpu_clock() - c0
            articles += sum(len(segmented.articles) for segmented in records)
    lines, refused = ledger.counts["lines"], len(ledger.quarantined)
    total, cpu_total = clock() - started, cpu_clock() - cpu_started
    result = {"dumps": len(dumps), "bytes": sum(d.bytes for d in dumps), "refused": refused, "lines": lines,
              "articles": articles, "seconds": total, "cpu_seconds": cpu_total, "steps": dict(steps),
              "cpu_steps": dict(cpu), "by_format_cpu": {k: dict(v) for k, v in by_format.items()},
              "import_s": import_s}
    if profiler:
        profiler.stop()
        profile_html.write_text(profiler.output_html(), encoding="utf-8")
        result["profile"] = summarise_profile(profiler.last_session)
    out.write_text(json.dumps(result), encoding="utf-8")


# --- the flow's work without Prefect (child mode) ------------------------------------------

# Worker-side: the batch task's plain function (tasks.batch.process_batch), with its steps timed.
_BATCH_STEPS: dict[str, list[float]] = {}  # step -> [wall s, CPU s of this process, calls]


def _timed(store: dict[str, list[float]], key, fn):
    """fn, adding its wall and CPU seconds and one call to store[key] (key may be a function of
    the call's arguments)."""
    def wrapper(*args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            name = key(args) if callable(key) else key
            entry = store.setdefault(name, [0.0, 0.0, 0])
            entry[0] += time.perf_counter() - t0
            entry[1] += time.process_time() - c0
            entry[2] += 1
    return wrapper


def _patch_once(module, store: dict[str, list[float]], timings: dict) -> None:
    """Replace module's names by timed wrappers (name -> (key, function)), once per process."""
    if getattr(module, "_bench_patched", False):
        return
    for name, (key, fn) in timings.items():
        setattr(module, name, _timed(store, key, fn))
    module._bench_patched = True


def _patch_batch_steps() -> None:
    """Time the steps process_batch calls, by replacing the names it looks up (once per process)."""
    import tasks.batch as batch_module
    from tasks import stage as stage_module
    from tasks import validate as validate_module

    _patch_once(batch_module, _BATCH_STEPS, {step: (step.split("_")[0], getattr(batch_module, step))
                                             for step in ("extract_dump", "clean_batch", "segment_dump")})
    # the gate's frame, then its validation
    _patch_once(validate_module, _BATCH_STEPS, {
        **{f"{step}_frame": (f"gate {step}", getattr(validate_module, f"{step}_frame"))
           for step in ("extract", "clean", "segment")},
        "validate_frame": (lambda args: f"gate {args[0]}", validate_module.validate_frame)})
    _patch_once(stage_module, _BATCH_STEPS, {
        "write_batch": ("stage batch (dedup keys, fingerprints, Parquet)", stage_module.write_batch)})


def _batch_worker(dumps, profile: str, batch_no: int, stage_folder: Path, profiled: bool):
    """In a pool process: process_batch, as the flow's `process_dumps` task calls it. Its steps are
    timed, except under the profiler (which shows them, and would show the timers too)."""
    if not profiled:
        _patch_batch_steps()
    import tasks.batch as batch_module

    _BATCH_STEPS.clear()
    profiler = None
    if profiled:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.001)
        profiler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = batch_module.process_batch(dumps, profile, batch_no, stage_folder)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    session = None
    if profiler:
        profiler.stop()
        session = profiler.last_session.to_json()
    return outcome, {k: list(v) for k, v in _BATCH_STEPS.items()}, wall, cpu, os.getpid(), session


#: what a stage of tasks/pipeline.py does, by its name and call number (follow and dedup run twice)
_STAGE_LABELS = {
    ("follow", 0): "follow at start (export + search index; catch-up, normally nothing)",
    ("discover", 0): "discover (loaded dumps, walk, stat, hash new files)",
    ("dedup-prepare", 0): "dedup: the warehouse's side (matches, known articles)",
    ("dedup-prepare", 1): "dedup again, without the dumps its gate refused: the warehouse's side",
    ("dedup", 0): "dedup: the author parts, in this process",
    ("dedup-finish", 0): "dedup: stored texts of rewritten articles",
    ("validate", 0): "gate dedup",
    ("load", 0): "load: BEGIN, gate load, COMMIT",
    ("follow", 1): "follow (export + search index)",
    ("report", 0): "report (Data Docs)",
}
_LOAD_LABEL = _STAGE_LABELS["load", 0]
_BATCH_WORK = "extract, clean, segment, gates, stage"
#: the parts of the load timed apart (see pipeline_child), and those of a follow (_patch_follow)
_LOAD_PARTS: dict[str, list[float]] = {}
_FOLLOW_PARTS: dict[str, list[float]] = {}  # part -> [wall s, CPU s, calls], summed over both follows


def _stage_worker(name: str, args: tuple):
    """In a pool process: the stage of tasks/pipeline.py named `name`, called with args."""
    from tasks import pipeline

    stage = next(s for s in vars(pipeline).values() if isinstance(s, pipeline.Stage) and s.name == name)
    return stage.fn(*args)


def _patch_follow() -> None:
    """Time the Parquet export and the search index sync inside follow_lake apart, by
    replacing the names tasks.followers looks up."""
    import tasks.followers as followers

    _patch_once(followers, _FOLLOW_PARTS, {
        "export_changes": ("Parquet export (export_changes)", followers.export_changes),
        "sync_search_index": ("search index (sync_search_index)", followers.sync_search_index)})


def pipeline_child(raw: Path, warehouse: Path, out: Path, workers: int, batch_mb: float,
                   profile_html: Path | None) -> None:
    """tasks.pipeline.run_pipeline, the flow's run without Prefect, with an executor that times
    every stage and runs the batches in a process pool of `workers` processes (spawned, as
    Prefect's ProcessPoolTaskRunner does; a single batch runs in this process, as the flow
    runs it). Prefect itself is never imported. The warehouse may be fresh or loaded (an
    incremental run).

    With profile_html, pyinstrument profiles the main process's work (not its waiting for the
    pool) and every batch in its worker, and the sessions are combined."""
    t_import = time.perf_counter()
    import multiprocessing
    import uuid
    from concurrent.futures import ProcessPoolExecutor

    from tasks import pipeline
    from tasks.profile import DEFAULT_PROFILE
    import_s = time.perf_counter() - t_import
    prefect_at_import = "prefect" in sys.modules  # should stay False: then no Prefect code runs here
    if not profile_html:
        _patch_follow()
        _patch_once(pipeline, _LOAD_PARTS, {
            "stage_run": ("load: write tables (stage_run)", pipeline.stage_run),
            "record_run": ("load: record run", pipeline.record_run)})

    sessions = []
    batch_steps: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    totals = {"wall": 0.0, "cpu": 0.0}
    worker_pids: set[int] = set()

    class Profiled:
        """The main process's work under pyinstrument, paused while it waits for the pool."""

        def __init__(self) -> None:
            self.profiler = None

        def start(self) -> None:
            if profile_html:
                from pyinstrument import Profiler
                self.profiler = Profiler(interval=0.001)
                self.profiler.start()

        def stop(self) -> None:
            if self.profiler:
                self.profiler.stop()
                sessions.append(self.profiler.last_session)
                self.profiler = None

    profiling = Profiled()

    class TimingExecutor:
        """tasks.pipeline's Executor, timing each stage (wall and CPU of this process, all its
        threads) under a label that says what it does."""

        def __init__(self) -> None:
            self.steps: dict[str, float] = defaultdict(float)
            self.cpu: dict[str, float] = defaultdict(float)
            self.calls: dict[str, int] = defaultdict(int)
            self.results: dict[str, list] = defaultdict(list)
            self.pool_step = ""
            self.batches = 0
            self.workers = None  # the process pool, started when first needed, as the flow's

        def run(self, stage, *args):
            label = _STAGE_LABELS.get((stage.name, self.calls[stage.name]), stage.name)
            self.calls[stage.name] += 1
            t0, c0 = time.perf_counter(), time.process_time()
            result, _, _ = stage.outcome(*args)
            self.steps[label] += time.perf_counter() - t0
            self.cpu[label] += time.process_time() - c0
            self.results[stage.name].append(result)
            return result

        def map(self, stage, calls):
            """In the pool, as the flow's task runner would (one call runs here, as in the flow)."""
            if len(calls) == 1 and stage.name != "batch":
                yield self.run(stage, *calls[0])
                return
            profiling.stop()  # the pool's work is profiled in the workers; waiting for it is not work
            t0, c0 = time.perf_counter(), time.process_time()
            label = self.pool_step if stage.name == "batch" else f"{stage.name} ({len(calls)} in the pool)"
            if stage.name == "batch":
                self.batches = len(calls)
                self.pool_step = label = (f"batches (one batch, in this process: {_BATCH_WORK})" if len(calls) == 1
                                          else f"batches (process pool of {workers}: start, {_BATCH_WORK})")
            try:
                if stage.name == "batch" and len(calls) == 1:
                    yield take(*_batch_worker(*calls[0], profile_html is not None))
                elif stage.name == "batch":
                    futures = [self.pool().submit(_batch_worker, *args, profile_html is not None) for args in calls]
                    for future in futures:
                        yield take(*future.result())
                else:
                    futures = [self.pool().submit(_stage_worker, stage.name, args) for args in calls]
                    for future in futures:
                        yield future.result()
            finally:
                self.steps[label] += time.perf_counter() - t0
                self.cpu[label] += time.process_time() - c0
                profiling.start()

        def pool(self):
            if self.workers is None:
                self.workers = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            return self.workers

        def info(self, message: str) -> None:
            pass

        def release_workers(self) -> None:
            if self.workers is not None:
                self.workers.shutdown()
                self.workers = None

    def take(outcome, timings, wall, bcpu, pid, session):
        for name, (w, c, n) in timings.items():
            batch_steps[name][0] += w
            batch_steps[name][1] += c
            batch_steps[name][2] += n
        totals["wall"] += wall
        totals["cpu"] += bcpu
        worker_pids.add(pid)
        if session:
            from pyinstrument.session import Session
            sessions.append(Session.from_json(session))
        return outcome

    executor = TimingExecutor()
    started, cpu_started = time.perf_counter(), time.process_time()
    profiling.start()
    try:
        run = pipeline.run_pipeline(raw, warehouse, DEFAULT_PROFILE, batch_mb, executor, run_id=str(uuid.uuid4()))
    finally:
        executor.release_workers()
    profiling.stop()
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    steps: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for label, seconds in executor.steps.items():
        steps[label], cpu[label] = seconds, executor.cpu[label]
        if label == _LOAD_LABEL:  # the parts timed inside the load's stage, shown after it, apart
            for name, (w, c, _) in _LOAD_PARTS.items():
                steps[name], cpu[name] = w, c
                steps[label] -= w
                cpu[label] -= c
    found = executor.results["discover"][0]
    followed_at_start, followed = executor.results["follow"][0], executor.results["follow"][-1]
    summary = run.summary
    result = {
        "seconds": total, "cpu_seconds_main": cpu_total, "import_s": import_s, "workers": workers,
        "worker_processes": len(worker_pids), "batches": executor.batches,
        "batch_mb": batch_mb, "pool_step": executor.pool_step, "steps": steps, "cpu_steps": cpu,
        "follow_parts": {k: list(v) for k, v in _FOLLOW_PARTS.items()},
        "batch_steps": dict(batch_steps), "batch_wall_s": totals["wall"], "batch_cpu_s": totals["cpu"],
        "load_gate": executor.results["load"][0].success,
        "followed": {"at_start": {"exported": followed_at_start.exported,
                                  "search_added": followed_at_start.search.added,
                                  "search_removed": followed_at_start.search.removed},
                     "after_load": {"exported": followed.exported, "search_added": followed.search.added,
                                    "search_removed": followed.search.removed,
                                    "search_rebuilt": followed.search.rebuilt}},
        "prefect_imported": prefect_at_import or "prefect" in sys.modules,
        "summary": {"dumps_found": summary.dumps_found, "dumps_new": len(found.new),
                    "new_bytes": sum(d.bytes for d in found.new), "dumps_skipped": summary.dumps_skipped,
                    "dumps_loaded": summary.dumps_loaded, "quarantined": len(summary.quarantined),
                    "articles_new": summary.articles_new, "articles_updated": summary.articles_updated,
                    "occurrences": summary.occurrences, "removed_by_category": summary.removed_by_category},
    }
    if sessions:
        from pyinstrument.session import Session
        combined = sessions[0]
        for s in sessions[1:]:
            combined = Session.combine(combined, s)
        from pyinstrument.renderers import HTMLRenderer
        profile_html.write_text(HTMLRenderer().render(combined), encoding="utf-8")
        result["profile"] = summarise_profile(combined)
        result["profile"]["sessions"] = len(sessions)
    out.write_text(json.dumps(result, default=str), encoding="utf-8")

# --- `gleaner run` under the profiler (child mode) ------------------------------------------

def cli_child(out: Path, profile_html: Path, cli_args: list[str]) -> None:
    """`gleaner <cli_args>` in this process under pyinstrument (the main thread: imports, Prefect,
    the flow and the tasks it runs there; not the pool workers' batches, nor the server)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    started = time.perf_counter()
    from gleaner.cli import main as gleaner_main
    code = gleaner_main(cli_args)
    total = time.perf_counter() - started
    profiler.stop()
    profile_html.write_text(profiler.output_html(), encoding="utf-8")
    out.write_text(json.dumps({"seconds": total, "exit": code, "profile": summarise_profile(profiler.last_session)}),
                   encoding="utf-8")


# --- profile summary ------------------------------------------------------------------------

# The step a function's time belongs to: the innermost of these on the stack decides.
STEP_OF = {
    ("tasks/discover.py", "discover"): "discover",
    ("tasks/load.py", "loaded_dumps"): "discover",
    ("tasks/extract.py", "extract_dump"): "extract",
    ("tasks/clean.py", "clean_batch"): "clean",
    ("tasks/segment.py", "segment_dump"): "segment",
    ("tasks/validate.py", "validate_frame"): "gates (Great Expectations, frames)",
    ("tasks/validate.py", "extract_frame"): "gates (Great Expectations, frames)",
    ("tasks/validate.py", "clean_frame"): "gates (Great Expectations, frames)",
    ("tasks/validate.py", "segment_frame"): "gates (Great Expectations, frames)",
    ("tasks/validate.py", "dedup_frame"): "gates (Great Expectations, frames)",
    ("tasks/validate.py", "load_frame"): "gates (Great Expectations, frames)",
    ("tasks/stage.py", "write_batch"): "stage a batch (dedup keys, fingerprints, Parquet)",
    ("tasks/stage.py", "prepare_dedup"): "dedup",
    ("tasks/stage.py", "dedup_group"): "dedup",
    ("tasks/stage.py", "finish_dedup"): "dedup",
    ("tasks/stage.py", "removed_by_category"): "load: write tables",
    ("tasks/load.py", "stage_run"): "load: write tables",
    ("tasks/load.py", "record_run"): "load: write tables",
    ("tasks/load.py", "in_transaction"): "load: transaction (BEGIN, COMMIT)",
    ("tasks/load.py", "open_for_run"): "open lake (attach, create tables, delete orphaned files)",
    ("tasks/lake.py", "open_lake"): "open lake (attach, create tables, delete orphaned files)",
    ("tasks/followers.py", "follow_lake"): "follow (export + search index)",
    ("tasks/export.py", "export_changes"): "follow: Parquet export",
    ("tasks/search.py", "sync_search_index"): "follow: search index",
    ("tasks/report.py", "build_data_docs"): "report (Data Docs)",
    ("tasks/report.py", "publish_artifacts"): "report (Prefect artifacts)",
}


# Built-ins in which a thread waits rather than works
IDLE = {"lock.acquire", "sleep", "select", "poll", "epoll.poll", "select.select", "wait", "socket.recv",
        "socket.recv_into", "socket.accept"}


def summarise_profile(session) -> dict:
    """Top functions by own time; the repo's functions by inclusive time; own time by step
    (the innermost step function on the stack, see STEP_OF) and by package. Shares of the
    profiled time (for combined sessions: summed over processes)."""
    root = session.root_frame()
    total = root.time if root else 0.0
    own: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    by_package: dict[str, float] = defaultdict(float)
    by_step: dict[str, float] = defaultdict(float)
    where: dict[str, str] = {}
    repo = str(ROOT) + "/"

    def key_of(frame) -> str:
        return f"{frame.function} ({frame.file_path_short}:{frame.line_no})"

    # (frame, keys on the stack, package of the caller, step, a Prefect frame on the stack)
    # combined sessions of several processes keep pyinstrument's synthetic root above their stacks
    tops = list(root.children) if root is not None and root.is_synthetic else [root]
    stack = [(top, frozenset(), "other", None, False) for top in tops]
    while stack:
        frame, on_stack, caller_package, step, in_prefect = stack.pop()
        if frame is None or frame.is_synthetic:
            continue
        key = key_of(frame)
        path = frame.file_path or ""
        where[key] = path
        package = _package(path) or caller_package
        in_prefect = in_prefect or package == "prefect"
        if path.startswith(repo) and "/.venv/" not in path:
            step = STEP_OF.get((path[len(repo):], frame.function), step)
        if key not in on_stack:  # recursion: count the outermost call only
            inclusive[key] += frame.time
        self_time = sum(c.time for c in frame.children if c.is_synthetic)
        own[key] += self_time
        by_package[package] += self_time
        if frame.function in IDLE:  # a thread waiting: for the pool's workers, the API server, a sleep
            by_step["waiting (pool workers, API server, sleeps)" + (", in Prefect's code" if in_prefect else "")] \
                += self_time
        else:
            by_step[step or ("outside the steps: Prefect" if in_prefect else
                             "outside the steps: other (imports, flow body, runtime)")] += self_time
        below = on_stack | {key}
        stack.extend((child, below, package, step, in_prefect) for child in frame.children)

    def share(seconds: float) -> float:
        return round(100 * seconds / total, 1) if total else 0.0

    ours = {k: v for k, v in inclusive.items() if where[k].startswith(repo) and "/.venv/" not in where[k]
            and "/bench/" not in where[k]}
    return {
        "profiled_s": round(total, 2),
        "samples": session.sample_count,
        "top_self": [(k, round(v, 2), share(v)) for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:TOP]],
        "top_inclusive_repo": [(k, round(v, 2), share(v))
                               for k, v in sorted(ours.items(), key=lambda kv: -kv[1])[:TOP]],
        "by_step": [(k, round(v, 2), share(v)) for k, v in sorted(by_step.items(), key=lambda kv: -kv[1])],
        "by_package": [(k, round(v, 2), share(v)) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])[:TOP]],
    }


def _package(path: str) -> str | None:
    """The package a source file belongs to: a site-packages top-level name, or the repo's
    folder (tasks, flows, gleaner); None for the standard library and built-ins, whose time
    goes to their caller's package."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith(str(ROOT)) and "/.venv/" not in path:
        return Path(path).relative_to(ROOT).parts[0]
    return None


# --- the benchmark --------------------------------------------------------------------------

def generate(mb: float, seed: int, out: Path, manifest: Path, prefix: str = "", authors: int | None = None) -> dict:
    cmd = [str(PYTHON), str(BENCH / "generate.py"), "--mb", str(mb), "--seed", str(seed), "--out", str(out),
           "--manifest", str(manifest)]
    if prefix:
        cmd += ["--prefix", prefix]
    if authors:
        cmd += ["--authors", str(authors)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(manifest.read_text())


def gleaner_env(prefect_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(prefect_home)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def cli_options() -> tuple[set[str], float]:
    """The options `gleaner run` has (the runner options are recent), and its default --batch-mb
    (read from its help; BATCH_MB when the help does not say)."""
    try:
        text = subprocess.run([str(GLEANER), "run", "--help"], capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return set(), BATCH_MB
    found = re.search(r"^\s*--batch-mb \S+\s+[^\n]*\(default:\s*([0-9.]+)\)", text, re.M)
    return ({opt for opt in ("--task-runner", "--workers", "--dask-address", "--batch-mb") if opt in text},
            float(found.group(1)) if found else BATCH_MB)


def equivalence_lines(warehouse: Path, work: Path, label: str) -> list[str]:
    """The end-to-end warehouse compared with the reference ones kept beside the corpus
    (WORK/warehouse-<label>-<commit>.json, written by `bench/equivalence.py warehouse` on a
    warehouse the code before a rewrite built): 'same' or the tables that differ."""
    sys.path.insert(0, str(BENCH))
    import equivalence

    digests = equivalence.warehouse_digests(warehouse)
    (work / f"warehouse-{label}-latest.json").write_text(json.dumps(digests, indent=0) + "\n")
    references = sorted(work.glob(f"warehouse-{label}-*.json"))
    lines = []
    for reference in (r for r in references if not r.stem.endswith("-latest")):
        differ = equivalence.differences(json.loads(reference.read_text()), digests)
        commit = reference.stem.removeprefix(f"warehouse-{label}-")
        lines.append(f"  same warehouse as the code at {commit} built (every row of {', '.join(digests)}, "
                     "but run ids and times)" if not differ else
                     f"  !! the warehouse differs from the one the code at {commit} built: {', '.join(differ)}")
    return lines or [f"  (no reference warehouse digest in {work} to compare with)"]


def warm_page_cache(raw: Path) -> float:
    """Read every file below raw once, so that a run reads them from memory (a corpus
    written long before, or pushed out by the warehouse copies, would be read from disk):
    the seconds it took."""
    started = time.perf_counter()
    for path in raw.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                while fh.read(1 << 20):
                    pass
    return time.perf_counter() - started


def gleaner_run(raw: Path, warehouse: Path, log: Path, env: dict, extra: list[str] = ()) -> dict:
    result = measure([str(GLEANER), "run", "--raw", str(raw), "--warehouse", str(warehouse), "--json", *extra],
                     log, env)
    summary = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"run_id"' in line:
            summary = json.loads(line)
    result["summary"] = summary
    if result["exit"] not in (0, 1) or not summary:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"!! `gleaner run` exited {result['exit']} without a summary; the end of {log}:", *tail, sep="\n  ",
              file=sys.stderr)
    return result


def run_child(cmd: list[str], out_json: Path, log: Path, env: dict | None = None) -> tuple[dict, dict | None]:
    """measure() a child mode of this script; its JSON, or None (and the log's end on stderr) if it failed."""
    out_json.unlink(missing_ok=True)  # never read an earlier run's results
    m = measure(cmd, log, env)
    if m["exit"] != 0 or not out_json.exists():
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"!! `run.py {cmd[2]}` failed (exit {m['exit']}); the end of {log}:", *tail, sep="\n  ", file=sys.stderr)
        return m, None
    return m, json.loads(out_json.read_text())


def _roles_line(cpu_by_role: dict[str, float]) -> str:
    return ", ".join(f"{role} {fmt_s(cpu)}" for role, cpu in sorted(cpu_by_role.items(), key=lambda kv: -kv[1]))


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if abs(seconds) >= 1 else f"{seconds * 1000:.0f} ms"


def print_profile(title: str, prof: dict, steps: bool = True) -> list[str]:
    lines = [f"{title} (pyinstrument, {prof['profiled_s']} s profiled, {prof['samples']} samples)"]
    if steps and prof.get("by_step"):
        lines.append("  own time by step (the innermost step function on the stack; waiting apart):")
        lines += [f"    {pct:5.1f} %  {sec:8.2f} s  {name}" for name, sec, pct in prof["by_step"]]
    lines.append("  top functions by own time (share of profiled time):")
    lines += [f"    {pct:5.1f} %  {sec:8.2f} s  {name}" for name, sec, pct in prof["top_self"]]
    lines.append("  the repo's functions by inclusive time:")
    lines += [f"    {pct:5.1f} %  {sec:8.2f} s  {name}" for name, sec, pct in prof["top_inclusive_repo"]]
    lines.append("  own time by package (the standard library's and built-ins' time goes to their caller's):")
    lines += [f"    {pct:5.1f} %  {sec:8.2f} s  {name}" for name, sec, pct in prof["by_package"][:8]]
    return lines


def rss_line(m: dict) -> str:
    parts = ", ".join(f"{role} {mb} MB" for role, mb in sorted(m["peak_rss_tree_parts_mb"].items(),
                                                                key=lambda kv: -kv[1]))
    return (f"  peak RSS: {m['peak_rss_tree_sum_mb']:.0f} MB summed over the process tree (at {m.get('peak_rss_tree_at_s', 0):.0f} s "
            f"of {m['wall_s']:.0f} s: {parts}); "
            f"gleaner process alone {m['peak_rss_mb']:.0f} MB; largest single process {m['largest_process_rss_mb']:.0f} MB; "
            f"PSS summed (shared pages once) {m['peak_pss_tree_sum_mb']:.0f} MB; anonymous memory summed (RSS without "
            f"file-backed pages) {m.get('peak_anon_tree_sum_mb', 0):.0f} MB; up to {m['max_processes']} processes")


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _stripped(m: dict) -> dict:
    """A measurement for the results JSON (without its RSS samples)."""
    return {k: v for k, v in m.items() if k != "rss_samples"}


def _ran(m: dict | None) -> bool:
    """Whether a `gleaner run` ended as a run does (0, or 1 for quarantined dumps) with its summary."""
    return bool(m) and m["exit"] in (0, 1) and bool(m.get("summary"))


def _check(name: str, lhs_name: str, lhs: float, rhs_name: str, rhs: float, ok: bool = True, unit: str = "s",
           detail: str = "") -> dict:
    """An acceptance check lhs <= rhs: 'met' / 'NOT met', or inconclusive when a run it needs failed."""
    text = fmt_s if unit == "s" else (lambda v: f"{v:.2f} {unit}")
    verdict_text = ("met" if lhs <= rhs else "NOT met") if ok else "inconclusive (a run failed: see its log)"
    return {"name": name, "lhs_name": lhs_name, "lhs": lhs, "lhs_text": text(lhs), "rhs_name": rhs_name, "rhs": rhs,
            "rhs_text": text(rhs), "met": ok and lhs <= rhs, "verdict": verdict_text, "detail": detail}


# --- bytes written into a warehouse ---------------------------------------------------------

def file_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    """relative path -> (size, mtime_ns, inode) of every file below folder (links not followed)."""
    state = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            try:
                st = path.lstat()
            except OSError:  # gone while listed
                continue
            state[path.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return state


def _top_level(path: str) -> str:
    head, sep, _ = path.partition("/")
    return head + "/" if sep else head


def written_report(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]) -> dict:
    """What a run wrote into a warehouse, from file_state() before and after it: the files that
    are new or changed in size, mtime or inode, counted at their size after; by top-level entry
    (lake/, parquet/, search/, data_docs/, lake.sqlite, ...), by folder and by file."""
    written = {p: v[0] for p, v in after.items() if before.get(p) != v}
    removed = {p: v[0] for p, v in before.items() if p not in after}
    total = sum(v[0] for v in after.values())
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # written bytes, files; bytes, files after
    for path, (size, _, _) in after.items():
        g = groups[_top_level(path)]
        g[2] += size
        g[3] += 1
    folders: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path, size in written.items():
        g = groups[_top_level(path)]
        g[0] += size
        g[1] += 1
        folder = path.rpartition("/")[0]
        f = folders[folder + "/" if folder else "(warehouse folder)"]
        f[0] += size
        f[1] += 1
    return {
        "written_bytes": sum(written.values()), "written_files": len(written),
        "total_bytes_after": total, "files_after": len(after),
        "files_removed": len(removed), "removed_bytes": sum(removed.values()),
        "share": sum(written.values()) / total if total else 0.0,
        "by_top_level": [(name, *g) for name, g in sorted(groups.items(), key=lambda kv: (-kv[1][0], -kv[1][2]))],
        "top_folders": [(name, *f) for name, f in sorted(folders.items(), key=lambda kv: -kv[1][0])[:10]],
        "top_files": sorted(written.items(), key=lambda kv: -kv[1])[:10],
    }


def pipeline_step_lines(pipe: dict, mb: float) -> list[str]:
    """The per-step times of a `run.py pipeline` run, main process then inside the batches
    (mb: the megabytes of dumps its batches read, for MB/s)."""
    lines = ["Where the time goes without Prefect, main process, in the flow's order (wall; CPU counts every "
             "thread, DuckDB's too):"]
    total = pipe["seconds"] or 1e-9
    for name, secs in pipe["steps"].items():
        lines.append(f"  {name:<76} {fmt_s(secs):>9} {100 * secs / total:5.1f} %  "
                     f"{fmt_s(pipe['cpu_steps'].get(name, 0.0)):>9} CPU")
        if name.startswith("follow (") and pipe.get("follow_parts"):
            for part, (w, c, n) in pipe["follow_parts"].items():
                # the two run side by side: each one's wall and CPU overlap the other's
                lines.append(f"    {'side by side: ' + part + f', both follows ({n} calls)':<74} {fmt_s(w):>9} "
                             f"{100 * w / total:5.1f} %  {fmt_s(c):>9} CPU")
    other = pipe["seconds"] - sum(pipe["steps"].values())
    lines.append(f"  {'(rest: flow body, rows, profile load)':<76} {fmt_s(other):>9} {100 * other / total:5.1f} %")
    bw, bc = pipe["batch_wall_s"], pipe["batch_cpu_s"]
    if not bw:
        return lines
    par = pipe["steps"].get(pipe.get("pool_step", ""), 0.0)
    lines.append(f"Inside the batches (summed over the {pipe['worker_processes']} process(es) that ran them: "
                 f"{fmt_s(bw)} busy, {fmt_s(bc)} CPU, in {fmt_s(par)} of wall = {bw / par if par else 0:.2f} "
                 "processes busy on average):")
    for name, (w, c, n) in sorted(pipe["batch_steps"].items(), key=lambda kv: -kv[1][0]):
        lines.append(f"  {name:<50} {fmt_s(w):>9} {100 * w / bw:5.1f} %  {fmt_s(c):>9} CPU  "
                     f"{mb / w if w else 0:7.1f} MB/s  ({n} calls)")
    rest = bw - sum(v[0] for v in pipe["batch_steps"].values())
    lines.append(f"  {'(rest: profile load, bookkeeping)':<50} {fmt_s(rest):>9} {100 * rest / bw:5.1f} %")
    return lines


#: the task run of a step of batch N, nested in the batch's ('batch-3-validate-clean'; flows/ingest.py)
_BATCH_STEP_RUN = re.compile(r"^batch-\d+-")
_LOG_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) \| \w+\s*\| (.*)$")


def log_steps(log: Path, wall_s: float) -> list[tuple[str, float]]:
    """Where a `gleaner run`'s wall time went, from the timestamps of its Prefect log lines:
    each task run from the previous event to its 'Finished' line (so with Prefect's task
    overhead), the temporary server's start, the flow's end; and what lies outside the log
    (interpreter start, imports, server stop, exit) = wall - (last line - first line)."""
    events: list[tuple[float, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        found = _LOG_LINE.match(line)
        if not found:
            continue
        h, m, sec, ms, text = found.groups()
        t = int(h) * 3600 + int(m) * 60 + int(sec) + int(ms) / 1000
        if events and t < events[-1][0] - 43200:  # past midnight
            t += 86400
        if text.startswith("prefect - Starting temporary server"):
            events.append((t, "start"))
        elif " - Beginning flow run" in text:
            events.append((t, "temporary Prefect server start, flow run set-up"))
        elif text.startswith("Task run '") and " - Finished in state" in text:
            name = text.split("'", 2)[1]
            if _BATCH_STEP_RUN.match(name):  # a step nested in its batch's task run: inside the batch's time
                continue
            task = name if name.startswith(("batch-", "validate-")) else name.rsplit("-", 1)[0]
            events.append((t, f"task {task}"))
        elif text.startswith("Flow run '") and " - Finished in state" in text:
            events.append((t, "flow end (after the last task)"))
        elif text.startswith("prefect - Stopping temporary server"):
            events.append((t, "stop"))
    if len(events) < 2:
        return []
    steps: list[tuple[str, float]] = []
    follows = 0
    for (t0, _), (t1, label) in zip(events, events[1:]):
        if label == "stop":
            label = "flow run end to server stop"
        elif label == "task follow":
            follows += 1
            label = "task follow (catch-up)" if follows == 1 else "task follow (export + search index)"
        steps.append((label, t1 - t0))
    steps.append(("outside the log: interpreter, imports, server stop, exit", wall_s - (events[-1][0] - events[0][0])))
    return steps


def log_step_lines(title: str, steps: list[tuple[str, float]], wall_s: float) -> list[str]:
    lines = [title]
    lines += [f"  {name:<58} {fmt_s(secs):>9} {100 * secs / wall_s:5.1f} %" for name, secs in steps]
    return lines


def bench(args: argparse.Namespace) -> int:
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    label = f"{args.mb:g}mb"
    raw = work / f"corpus-{label}-s{args.seed}"
    manifest = work / f"corpus-{label}-s{args.seed}.json"
    extra_prefix = "zz"
    out: list[str] = []
    bench_started = time.perf_counter()

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    info = machine()
    dirty = f" + uncommitted changes to {', '.join(info['uncommitted'])}" if info["uncommitted"] else ""
    say(f"Gleaner benchmark, {info['date']}, commit {info['commit']}{dirty}")
    say(f"Machine: {info['cpu']}, {info['cores_usable']} cores usable ({info['cores_online']} online), "
        f"{info['ram_gb']} GB RAM, Python {info['python']}, {info['os']}")

    # corpus: reuse when the manifest matches, else write it anew
    sys.path.insert(0, str(BENCH))
    import generate as gen_module
    corpus = None
    if manifest.exists() and raw.is_dir():
        corpus = json.loads(manifest.read_text())
        if corpus.get("generator_version") != gen_module.GENERATOR_VERSION or corpus.get("mb") != args.mb:
            corpus = None
    for leftover in raw.glob(f"{extra_prefix}*"):  # the +1% part of an earlier bench
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    if corpus is None:
        shutil.rmtree(raw, ignore_errors=True)
        t0 = time.perf_counter()
        corpus = generate(args.mb, args.seed, raw, manifest)
        say(f"Corpus: generated in {fmt_s(time.perf_counter() - t0)}")
    else:
        say("Corpus: reused (same generator version, size and seed)")
    mb = corpus["bytes"] / 1e6
    say(f"Corpus: {mb:.1f} MB on disk in {corpus['dumps']} dumps ({corpus['html_files']} HTML, "
        f"{corpus['gz_files']} gzipped; HTML {100 * corpus['html_share_of_bytes']:.0f}% of bytes), "
        f"{corpus['articles_printed']} articles printed ({corpus['reprints']} reprints), "
        f"{corpus['authors']} authors; seed {args.seed}")
    results: dict = {"machine": info, "corpus": corpus,
                     "targets": {k: v[0] for k, v in TARGETS.items()}}

    prefect_home = work / "prefect-home"
    env = gleaner_env(prefect_home)
    logs = work / f"logs-{label}"
    logs.mkdir(exist_ok=True)
    options, batch_mb = cli_options()
    workers = os.cpu_count() or 1  # the CLI's default (gleaner.runners.default_workers)
    has_workers = "--workers" in options
    say(f"`gleaner run` options: {', '.join(sorted(options)) or 'none of the runner options'}; "
        + (f"default task runner: a process pool of {workers} workers (os.cpu_count())" if "--task-runner" in options
           else "no --task-runner option: the flow's own default task runner"))
    results["cli_options"] = sorted(options)
    results["batch_mb"] = batch_mb

    parts = {"core", "e2e", "workers1", "incremental", "pipeline", "profile"}
    want = set(args.only.split(",")) if args.only else set(parts)
    if "acceptance" in want:  # the acceptance checks are the incremental part
        want = (want - {"acceptance"}) | {"incremental"}
    unknown = want - parts
    if unknown:
        print(f"run.py: unknown --only part(s): {', '.join(sorted(unknown))}; choose from {', '.join(sorted(parts))}",
              file=sys.stderr)
        return 2
    if args.profile_pipeline:
        want.add("profile")
    if args.no_profile:
        want.discard("profile")
    if "incremental" in want:
        want.add("e2e")  # a rerun needs the full run's warehouse
    if "workers1" in want and not has_workers:
        say("(--workers 1 comparison skipped: `gleaner run` has no --workers option)")
        want.discard("workers1")
    e2e = plus = rerun = w1 = pipe = None
    share = share_cpu = per_10k = None
    warm2 = None
    me = str(Path(__file__).resolve())

    # warm-up: Prefect's database is created and migrated on the first run ever
    if want & {"e2e", "workers1", "pipeline"}:
        shutil.rmtree(work / "wh-warmup", ignore_errors=True)
        warm = gleaner_run(ROOT / "data" / "raw", work / "wh-warmup", logs / "warmup.log", env)
        warm2 = gleaner_run(ROOT / "data" / "raw", work / "wh-warmup", logs / "warmup-rerun.log", env)
        if warm["summary"].get("quarantined"):
            say(f"!! the warm-up quarantined {len(warm['summary']['quarantined'])} of the 5 seed dumps, e.g. "
                f"{': '.join(warm['summary']['quarantined'][0])}")
        results["warmup"] = {"first_s": warm["wall_s"], "rerun_s": warm2["wall_s"], "exit": warm["exit"],
                             "peak_rss_tree_sum_mb": warm["peak_rss_tree_sum_mb"]}
        say(f"Fixed cost: `gleaner run` on the 5 seed dumps {fmt_s(warm['wall_s'])} (first run with this "
            f"PREFECT_HOME; exit {warm['exit']}), again with nothing new {fmt_s(warm2['wall_s'])}")
        say()

    # core steps, one process, no Prefect
    core = None
    if "core" in want:
        core_json = work / f"core-{label}.json"
        m, core = run_child([str(PYTHON), me, "core", str(raw), str(core_json)], core_json, logs / "core.log")
    if "core" in want and core is None:
        say(f"Core steps: the child process failed (see {logs / 'core.log'})")
    elif "core" in want:
        core["peak_rss_mb"], core["load_1min"] = m["peak_rss_mb"], m["load_1min"]
        results["core"] = core
        mb_core, cpu_s = core["bytes"] / 1e6, core["cpu_seconds"]
        say(f"Core steps (extract + clean + segment, one process, no Prefect, no gates): {mb_core / cpu_s:.1f} MB per "
            f"CPU-second = MB/s on one core ({fmt_s(cpu_s)} CPU, {fmt_s(core['seconds'])} wall, for {mb_core:.1f} MB, "
            f"{core['dumps']} dumps, {core['articles']} articles, {core['refused']} refused by extract; "
            f"peak RSS {m['peak_rss_mb']:.0f} MB)")
        for step in ("extract", "clean", "segment"):
            c = core["cpu_steps"][step]
            say(f"  {step:<8} {fmt_s(c):>9} CPU  {100 * c / cpu_s:5.1f} %  {mb_core / c:7.1f} MB/s")
        for kind, f in sorted(core["by_format_cpu"].items()):
            t = f["extract"] + f["clean"] + f["segment"]
            say(f"  {kind:<4} dumps: {int(f['dumps'])} dumps, {f['bytes'] / 1e6:.1f} MB ({100 * f['bytes'] / core['bytes']:.0f} % "
                f"of bytes), {fmt_s(t)} CPU ({100 * t / cpu_s:.0f} % of the time), {f['bytes'] / 1e6 / t:.1f} MB/s "
                f"(extract {f['bytes'] / 1e6 / f['extract']:.1f} MB/s, clean {f['bytes'] / 1e6 / f['clean']:.1f} MB/s, "
                f"segment {f['bytes'] / 1e6 / f['segment']:.1f} MB/s)")
        if args.profile_core and not args.no_profile:
            prof_json = work / f"core-profile-{label}.json"
            _, data = run_child([str(PYTHON), me, "core", str(raw), str(prof_json), "--profile",
                                 str(work / f"profile-core-{label}.html")], prof_json, logs / "core-profile.log")
            if data:
                results["core_profile"] = data["profile"]
                for line in print_profile("Profile of the core steps", data["profile"]):
                    say(line)
        say()

    # end to end, default task runner
    wh = work / f"wh-{label}"
    if "e2e" in want:
        shutil.rmtree(wh, ignore_errors=True)
        read_s = warm_page_cache(raw)
        say(f"(the corpus read once before the run, {fmt_s(read_s)}: the run reads it from the page cache)")
        e2e = gleaner_run(raw, wh, logs / "e2e.log", env)
        results["e2e"] = {k: v for k, v in e2e.items() if k != "rss_samples"}
        results["e2e_rss_samples"] = e2e["rss_samples"][:: max(1, len(e2e["rss_samples"]) // 300)]
        s = e2e["summary"]
        say(f"End to end (`gleaner run`, fresh warehouse, default task runner): {mb / e2e['wall_s']:.2f} MB/s "
            f"({fmt_s(e2e['wall_s'])} wall for {mb:.1f} MB; {fmt_s(e2e['cpu_s'])} CPU with its children = "
            f"{mb / e2e['cpu_s']:.2f} MB per CPU-second; exit {e2e['exit']})")
        if s:
            say(f"  dumps {s['dumps_found']} found, {s['dumps_loaded']} loaded, {len(s['quarantined'])} quarantined; "
                f"articles {s['articles_new']} new, {s['occurrences']} occurrences; checks {s['checks_passed']} passed, "
                f"{s['checks_failed']} failed, {s['checks_skipped']} skipped")
            for source, reason in s["quarantined"][:5]:
                say(f"  quarantined {source}: {reason}")
        say(rss_line(e2e))
        for line in equivalence_lines(wh, work, label):
            say(line)

    # the same with one worker
    if "workers1" in want:
        wh1 = work / f"wh-{label}-w1"
        shutil.rmtree(wh1, ignore_errors=True)
        w1 = gleaner_run(raw, wh1, logs / "e2e-workers1.log", env, ["--workers", "1"])
        results["e2e_workers1"] = {k: v for k, v in w1.items() if k != "rss_samples"}
        speedup = f"; the default runner is {w1['wall_s'] / e2e['wall_s']:.2f}x as fast" if e2e else ""
        say(f"End to end with --workers 1: {mb / w1['wall_s']:.2f} MB/s ({fmt_s(w1['wall_s'])} wall, "
            f"{fmt_s(w1['cpu_s'])} CPU; exit {w1['exit']}{speedup})")
        say(rss_line(w1))
        if not args.keep:
            shutil.rmtree(wh1, ignore_errors=True)
    if want & {"e2e", "workers1"}:
        say()

    # the acceptance figures of "a run costs what its new dumps cost": EMPTY, RERUN, +1%
    empty_s = rerun_s = plus_s = None
    writes = None
    checks: list[dict] = []
    if "incremental" in want:
        # EMPTY: a run over an empty --raw, the fixed cost of any run
        empty_raw = work / "empty-raw"
        shutil.rmtree(empty_raw, ignore_errors=True)
        empty_raw.mkdir()
        wh_empty = work / f"wh-{label}-empty"
        shutil.rmtree(wh_empty, ignore_errors=True)
        empties = [gleaner_run(empty_raw, wh_empty, logs / f"empty-{i}.log", env) for i in (1, 2, 3)]
        empty_s = statistics.median(e["wall_s"] for e in empties)
        results["empty"] = {"runs": [_stripped(e) for e in empties], "median_s": empty_s}
        say(f"EMPTY (`gleaner run` over an empty --raw, 3 runs into one fresh warehouse, the first creating it): "
            f"{', '.join(fmt_s(e['wall_s']) for e in empties)}; median {fmt_s(empty_s)} = the fixed cost of a run "
            f"(CPU {', '.join(fmt_s(e['cpu_s']) for e in empties)}; exits {', '.join(str(e['exit']) for e in empties)})")

        # RERUN: nothing new, on the full run's warehouse
        reruns = [gleaner_run(raw, wh, logs / f"rerun-{i}.log", env) for i in (1, 2, 3)]
        rerun = sorted(reruns, key=lambda r: r["wall_s"])[1]  # the median run
        rerun_s = rerun["wall_s"]
        results["rerun"] = _stripped(rerun)
        results["rerun"]["runs_s"] = [r["wall_s"] for r in reruns]
        per_10k = rerun_s * 10_000 / corpus["dumps"]
        results["rerun"]["s_per_10k_dumps"] = per_10k
        say(f"RERUN with nothing new (3 runs on the full warehouse): {', '.join(fmt_s(r['wall_s']) for r in reruns)}; "
            f"median {fmt_s(rerun_s)} for {corpus['dumps']} dumps = {per_10k:.1f} s per 10,000 dumps "
            f"(CPU {fmt_s(rerun['cpu_s'])}; exits {', '.join(str(r['exit']) for r in reruns)}); "
            f"RERUN - EMPTY = {fmt_s(rerun_s - empty_s)}"
            + (f"; a rerun on the 5 seed dumps took {fmt_s(warm2['wall_s'])}"
               if warm2 and warm2["summary"] and not warm2["summary"].get("quarantined") else ""))
        if rerun["summary"]:
            rs = rerun["summary"]
            say(f"  dumps {rs['dumps_loaded']} loaded, {rs['dumps_skipped']} already loaded, "
                f"{len(rs['quarantined'])} quarantined")
        rerun_log = logs / f"rerun-{reruns.index(rerun) + 1}.log"
        results["rerun"]["log_steps"] = steps = log_steps(rerun_log, rerun_s)
        for line in log_step_lines(f"Where the median rerun's wall time went (from its Prefect log's timestamps, "
                                   f"{rerun_log.name}):", steps, rerun_s):
            say("  " + line)
        empty_log = logs / f"empty-{[e['wall_s'] for e in empties].index(empty_s) + 1}.log"
        results["empty"]["log_steps"] = steps = log_steps(empty_log, empty_s)
        for line in log_step_lines(f"Where the median EMPTY run's wall time went ({empty_log.name}):", steps, empty_s):
            say("  " + line)
        checks.append(_check("check 1: RERUN <= EMPTY + 1 s", "RERUN", rerun_s, "EMPTY + 1 s", empty_s + 1.0,
                             ok=_ran(rerun) and all(_ran(e) for e in empties)))

        if "profile" in want:  # where a rerun's time goes
            rp_json = work / f"rerun-profile-{label}.json"
            _, data = run_child([str(PYTHON), me, "cli", str(rp_json), str(work / f"profile-rerun-{label}.html"), "--",
                                 "run", "--raw", str(raw), "--warehouse", str(wh), "--quiet"], rp_json,
                                logs / "rerun-profile.log", env)
            if data:
                results["rerun_profile"] = data["profile"]
                for line in print_profile(f"Profile of a rerun with nothing new (`gleaner run` in-process, main "
                                          f"thread; {fmt_s(data['seconds'])}, exit {data['exit']})", data["profile"]):
                    say(line)

        # +1% new dumps: its time, and the bytes it writes into the warehouse
        extra_manifest = work / f"corpus-{label}-s{args.seed}-extra.json"
        extra = generate(round(args.mb / 100, 3), args.seed + 1000, raw, extra_manifest, prefix=extra_prefix,
                         authors=corpus["authors"])
        # Three +1% runs, each on a copy of the full warehouse as it was before the first: a
        # single run's wall time varies by seconds on a shared machine, its median less.
        full_copy = work / f"wh-{label}-before-plus"
        shutil.rmtree(full_copy, ignore_errors=True)
        shutil.copytree(wh, full_copy, symlinks=True)
        pluses = []
        for i in (1, 2, 3):
            if i > 1:
                shutil.rmtree(wh)
                shutil.copytree(full_copy, wh, symlinks=True)
            before = file_state(wh)
            run = gleaner_run(raw, wh, logs / f"plus1pct-{i}.log", env)
            pluses.append((run, written_report(before, file_state(wh)), i))
        shutil.rmtree(full_copy)
        plus, writes, plus_no = sorted(pluses, key=lambda p: p[0]["wall_s"])[1]  # the median run
        plus_s = plus["wall_s"]
        results["plus_1pct"] = _stripped(plus)
        results["plus_1pct"]["runs_s"] = [p[0]["wall_s"] for p in pluses]
        results["plus_1pct"]["extra"] = extra
        results["plus_1pct"]["written"] = writes
        say(f"+1% ({extra['dumps']} new dumps, {extra['bytes'] / 1e6:.2f} MB; 3 runs, each on a copy of the full "
            f"warehouse): {', '.join(fmt_s(p[0]['wall_s']) for p in pluses)}; median {fmt_s(plus_s)} = "
            f"{100 * plus_s / e2e['wall_s']:.1f} % of the full run's wall time; {fmt_s(plus['cpu_s'])} CPU = "
            f"{100 * plus['cpu_s'] / e2e['cpu_s']:.1f} % of its CPU time (exit {plus['exit']}; "
            f"peak RSS {plus['peak_rss_tree_sum_mb']:.0f} MB summed over the tree)")
        if plus["summary"]:
            ps = plus["summary"]
            say(f"  dumps {ps['dumps_loaded']} loaded, {ps['dumps_skipped']} already loaded, "
                f"{len(ps['quarantined'])} quarantined; articles {ps['articles_new']} new, "
                f"{ps['articles_updated']} updated")
        results["plus_1pct"]["log_steps"] = steps = log_steps(logs / f"plus1pct-{plus_no}.log", plus_s)
        for line in log_step_lines(f"Where the median +1% run's wall time went (from its Prefect log's timestamps, "
                                   f"plus1pct-{plus_no}.log; each task from the previous event):", steps, plus_s):
            say("  " + line)
        full_s = e2e["wall_s"]
        checks.append(_check("check 2: PLUS - EMPTY <= 5% of (FULL - EMPTY) + 1 s", "PLUS - EMPTY",
                             plus_s - empty_s, "0.05 * (FULL - EMPTY) + 1 s", 0.05 * (full_s - empty_s) + 1.0,
                             ok=all(_ran(p[0]) for p in pluses) and _ran(e2e),
                             detail=f"PLUS {fmt_s(plus_s)}, EMPTY {fmt_s(empty_s)}, FULL {fmt_s(full_s)}"))
        say(f"Bytes the median +1% run wrote into the warehouse (files new, or changed in size, mtime or inode): "
            f"{fmt_bytes(writes['written_bytes'])} in {writes['written_files']} files, of "
            f"{fmt_bytes(writes['total_bytes_after'])} in {writes['files_after']} files after it = "
            f"{100 * writes['share']:.2f} %; {writes['files_removed']} files removed "
            f"({fmt_bytes(writes['removed_bytes'])}); the run's stage, deleted at its end, is not counted")
        say("  by top-level entry of the warehouse: written (files) / size after (files)")
        for name, w, wf, t, tf in writes["by_top_level"]:
            say(f"    {name:<24} {fmt_bytes(w):>10} ({wf:>5}) / {fmt_bytes(t):>10} ({tf:>6})")
        say("  top 10 written folders (files grouped by folder):")
        for name, w, wf in writes["top_folders"]:
            say(f"    {fmt_bytes(w):>10}  {wf:>5} files  {name}")
        say("  top 10 written files:")
        for name, w in writes["top_files"]:
            say(f"    {fmt_bytes(w):>10}  {name}")
        checks.append(_check("check 3: bytes written by +1% <= 10% of the warehouse", "written",
                             100 * writes["share"], "10% of the warehouse after the run", 10.0,
                             ok=all(_ran(p[0]) for p in pluses),
                             unit="%",
                             detail=f"{fmt_bytes(writes['written_bytes'])} of {fmt_bytes(writes['total_bytes_after'])}"))
        say("Acceptance checks (\"a run costs what its new dumps cost\"):")
        for c in checks:
            say(f"  {c['name']}: {c['lhs_name']} = {c['lhs_text']} vs {c['rhs_name']} = {c['rhs_text']}: {c['verdict']}"
                + (f"  ({c['detail']})" if c.get("detail") else ""))
        results["acceptance"] = {"empty_s": empty_s, "rerun_s": rerun_s, "plus_s": plus_s, "full_s": full_s,
                                 "checks": checks}

        # where a +1% run's time goes: another 1%, by the flow's steps without Prefect
        generate(round(args.mb / 100, 3), args.seed + 3000, raw, work / f"corpus-{label}-s{args.seed}-extra3.json",
                 prefix=extra_prefix + "c", authors=corpus["authors"])
        ip_json = work / f"pipeline-plus1pct-{label}.json"
        ipm, ipipe = run_child([str(PYTHON), me, "pipeline", str(raw), str(wh), str(ip_json), "--workers",
                                str(workers), "--batch-mb", str(batch_mb)], ip_json, logs / "pipeline-plus1pct.log",
                               env)
        if ipipe:
            ipipe.update({k: v for k, v in ipm.items() if k != "rss_samples"})
            results["pipeline_plus_1pct"] = ipipe
            ips = ipipe["summary"]
            say(f"Another +1% by the flow's steps without Prefect (`run.py pipeline` on the full warehouse): "
                f"{fmt_s(ipm['wall_s'])} wall for the process ({fmt_s(ipipe['import_s'])} imports, "
                f"{fmt_s(ipipe['seconds'])} of work), {fmt_s(ipm['cpu_s'])} CPU; {ips['dumps_loaded']} dumps loaded, "
                f"{ips['dumps_skipped']} already loaded, {ips['articles_new']} articles new, "
                f"{ips['articles_updated']} updated")
            for line in pipeline_step_lines(ipipe, ips["new_bytes"] / 1e6):
                say(line)
        else:
            say(f"(the +1% run without Prefect failed: see {logs / 'pipeline-plus1pct.log'})")

        if "profile" in want:  # where an incremental run's time goes: another 1%, under the profiler
            generate(round(args.mb / 100, 3), args.seed + 2000, raw, work / f"corpus-{label}-s{args.seed}-extra2.json",
                     prefix=extra_prefix + "b", authors=corpus["authors"])
            pp_json = work / f"plus1pct-profile-{label}.json"
            _, data = run_child([str(PYTHON), me, "cli", str(pp_json), str(work / f"profile-plus1pct-{label}.html"),
                                 "--", "run", "--raw", str(raw), "--warehouse", str(wh), "--quiet"], pp_json,
                                logs / "plus1pct-profile.log", env)
            if data:
                results["plus_1pct_profile"] = data["profile"]
                for line in print_profile(f"Profile of a +1% run (`gleaner run` in-process, main thread: the new "
                                          f"batch runs in a pool worker and is not in it; {fmt_s(data['seconds'])}, "
                                          f"exit {data['exit']})", data["profile"]):
                    say(line)
        for leftover in raw.glob(f"{extra_prefix}*"):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        say()

    # the flow's work without Prefect: per-step times and Prefect's share
    if "pipeline" in want:
        wh2 = work / f"wh-{label}-noprefect"
        shutil.rmtree(wh2, ignore_errors=True)
        pipe_json = work / f"pipeline-{label}.json"
        pm, pipe = run_child([str(PYTHON), me, "pipeline", str(raw), str(wh2), str(pipe_json), "--workers",
                              str(workers), "--batch-mb", str(batch_mb)], pipe_json, logs / "pipeline.log", env)
        if pipe is None:
            say(f"The run without Prefect failed (see {logs / 'pipeline.log'}): no Prefect's share")
            want.discard("pipeline")
    if "pipeline" in want:
        pipe.update({k: v for k, v in pm.items() if k != "rss_samples"})
        results["pipeline"] = pipe
        ps = pipe["summary"]
        say(f"The flow's work without Prefect (its tasks' plain functions in the flow's order, the {pipe['batches']} "
            f"batches in a spawned process pool of {pipe['workers']}, as `gleaner run` by default): "
            f"{fmt_s(pm['wall_s'])} wall, {fmt_s(pm['cpu_s'])} CPU with its workers "
            f"({fmt_s(pipe['import_s'])} imports; peak RSS {pm['peak_rss_tree_sum_mb']:.0f} MB summed over the tree)")
        say(f"  same outcome: {ps['dumps_loaded']} dumps loaded, {ps['quarantined']} quarantined, {ps['articles_new']} "
            f"articles new, {ps['occurrences']} occurrences"
            + (f" (`gleaner run`: {e2e['summary'].get('dumps_loaded')}, {len(e2e['summary'].get('quarantined', []))}, "
               f"{e2e['summary'].get('articles_new')}, {e2e['summary'].get('occurrences')})" if e2e and e2e["summary"]
               else "")
            + ("; WARNING: Prefect was imported" if pipe.get("prefect_imported") else ""))
        say(rss_line(pm))
        if e2e:
            share = 1 - pm["wall_s"] / e2e["wall_s"]
            share_cpu = 1 - pm["cpu_s"] / e2e["cpu_s"]
            results["prefect_share"], results["prefect_share_cpu"] = share, share_cpu
            say(f"Prefect's share of the end-to-end run: {100 * share:.1f} % of the wall time "
                f"({fmt_s(e2e['wall_s'] - pm['wall_s'])} of {fmt_s(e2e['wall_s'])}), {100 * share_cpu:.1f} % of the CPU "
                f"time ({fmt_s(e2e['cpu_s'] - pm['cpu_s'])} of {fmt_s(e2e['cpu_s'])})")
            say(f"  CPU by process (as last sampled): `gleaner run` {_roles_line(e2e.get('cpu_by_role_s', {}))}; "
                f"without Prefect {_roles_line(pm.get('cpu_by_role_s', {}))}")
            say("  Method: both are whole processes timed from outside (interpreter start to exit), on a fresh "
                "warehouse, with the same")
            say("  batches in a process pool of the same size; the run without Prefect calls the functions the flow's "
                "tasks call")
            say("  (writer_lock, start_stage, open_for_run, follow_lake, discover, process_batch, dedup (prepare_dedup, dedup_group, finish_dedup), the "
                "dedup gate,")
            say("  stage_run + load gate + record_run in one transaction, follow_lake, build_data_docs) and never "
                "imports Prefect. The")
            say("  difference is what Prefect adds: its import, the temporary API server, flow/task run bookkeeping, "
                "task parameter/result")
            say("  pickling to the pool, logs and events sent to the API, artifacts. CPU counts the server's and the "
                "workers' CPU. On a")
            say("  busy machine both figures are noisy.")
        for line in pipeline_step_lines(pipe, mb):
            say(line)
        say()

    # profile of the whole run (without Prefect: the main process and every batch in its worker)
    if "profile" in want:
        wh3 = work / f"wh-{label}-profile"
        shutil.rmtree(wh3, ignore_errors=True)
        prof_json = work / f"pipeline-profile-{label}.json"
        m, data = run_child([str(PYTHON), me, "pipeline", str(raw), str(wh3), str(prof_json), "--workers",
                             str(workers), "--profile", str(work / f"profile-pipeline-{label}.html")], prof_json,
                            logs / "pipeline-profile.log", env)
        if data:
            prof = data["profile"]
            results["pipeline_profile"] = prof
            for line in print_profile(
                    f"Profile of the whole run's work without Prefect (main process and the batches in their workers, "
                    f"{prof.get('sessions', 1)} sessions combined; times summed over processes; the main process's "
                    f"waiting for the pool left out)", prof):
                say(line)
            say("  (Prefect's own cost is the share above; the profiles of the rerun and +1% runs show it by "
                "package. pyinstrument slows")
            say("  pure-Python code 2-3x, C code less: compare with the per-step times measured without it.)")
        else:
            say(f"(the profiled run failed, exit {m['exit']}: see {logs / 'pipeline-profile.log'})")
        shutil.rmtree(wh3, ignore_errors=True)
        say()

    if args.profile_e2e:
        wh4 = work / f"wh-{label}-profile-e2e"
        shutil.rmtree(wh4, ignore_errors=True)
        ep_json = work / f"e2e-profile-{label}.json"
        _, data = run_child([str(PYTHON), me, "cli", str(ep_json), str(work / f"profile-e2e-{label}.html"), "--", "run",
                             "--raw", str(raw), "--warehouse", str(wh4), "--quiet"], ep_json, logs / "e2e-profile.log",
                            env)
        if data:
            results["e2e_profile"] = data["profile"]
            for line in print_profile("Profile of `gleaner run` end to end (in-process, main thread; the batches run "
                                      "in pool workers and are not in it)", data["profile"]):
                say(line)
        shutil.rmtree(wh4, ignore_errors=True)
        say()

    # summary against the targets
    rows: list[tuple[str, str, str, str]] = []
    if e2e:
        v = mb / e2e["wall_s"]
        rows.append((f"end to end, default runner ({workers} workers)", f"{v:.2f} MB/s", TARGETS["e2e_mb_s"][0],
                     verdict(v, "e2e_mb_s")))
    if w1:
        v = mb / w1["wall_s"]
        rows.append(("end to end, --workers 1", f"{v:.2f} MB/s", TARGETS["e2e_mb_s"][0], verdict(v, "e2e_mb_s")))
    if "core" in results:
        v = results["core"]["bytes"] / 1e6 / results["core"]["cpu_seconds"]
        rows.append(("core steps (extract+clean+segment)", f"{v:.2f} MB/s/core", TARGETS["core_mb_s_per_core"][0],
                     verdict(v, "core_mb_s_per_core")))
    if e2e:
        v = e2e["peak_rss_tree_sum_mb"]
        rows.append((f"peak RSS, {label} (process tree summed)", f"{v:.0f} MB", TARGETS["peak_rss"][0],
                     verdict(v, "peak_rss")))
        other_label = "100mb" if args.mb >= 1000 else "1000mb" if args.mb == 100 else None
        other_file = work / f"results-{other_label}.json" if other_label else None
        other = None
        if other_file and other_file.exists():
            other = json.loads(other_file.read_text())
            if "peak_rss_tree_sum_mb" not in other.get("e2e", {}):
                other = None  # measured by an earlier run.py, with another meaning
        if other:
            o = other["e2e"]["peak_rss_tree_sum_mb"]
            small, big = (o, v) if args.mb >= 1000 else (v, o)
            rows.append((f"peak RSS, {other_label} (from {other['machine']['date']}, {other['machine']['commit']})",
                         f"{o:.0f} MB", TARGETS["peak_rss"][0], verdict(o, "peak_rss")))
            rows.append(("peak RSS growth, 1 GB over 100 MB", f"{big - small:+.0f} MB", TARGETS["rss_flat"][0],
                         verdict(max(big - small, 0.0), "rss_flat")))
        else:
            rows.append(("peak RSS growth, 1 GB over 100 MB", "-", TARGETS["rss_flat"][0],
                         f"needs WORK/results-{other_label or '100mb and 1000mb'}.json from this run.py"))
    if per_10k is not None:
        rows.append(("rerun with nothing new (median of 3)", f"{per_10k:.1f} s/10k dumps", TARGETS["rerun"][0],
                     verdict(per_10k, "rerun")))
    if plus:
        v = 100 * plus["wall_s"] / e2e["wall_s"]
        rows.append(("+1% new dumps", f"{v:.1f} % of full run", TARGETS["plus_1pct"][0], verdict(v, "plus_1pct")))
    if empty_s is not None:
        rows.append(("EMPTY: run over an empty --raw (median of 3)", fmt_s(empty_s), "(the fixed cost; no target)",
                     "-"))
    for c in checks:
        rows.append((c["name"], c["lhs_text"], f"<= {c['rhs_text']} ({c['rhs_name']})", c["verdict"]))
    if share is not None:
        rows.append(("Prefect's share (wall)", f"{100 * share:.1f} %", TARGETS["prefect_share"][0],
                     verdict(100 * share, "prefect_share") if share >= 0 else
                     "inconclusive (negative: wall-time noise; see CPU)"))
        rows.append(("Prefect's share (CPU)", f"{100 * share_cpu:.1f} %", TARGETS["prefect_share"][0],
                     verdict(100 * share_cpu, "prefect_share")))
    results["summary_table"] = rows
    if rows:
        say(f"Summary ({label}, commit {info['commit']}{' + uncommitted changes' if dirty else ''}, {info['date']}):")
        widths = [max(len(r[i]) for r in rows + [("figure", "value", "target", "verdict")]) for i in range(3)]
        say(f"  {'figure':<{widths[0]}}  {'value':>{widths[1]}}  {'target':<{widths[2]}}  verdict")
        for fig, val, tgt, ver in rows:
            say(f"  {fig:<{widths[0]}}  {val:>{widths[1]}}  {tgt:<{widths[2]}}  {ver}")
    loads = [v for part in ("core", "e2e", "e2e_workers1", "rerun", "plus_1pct", "pipeline", "pipeline_plus_1pct")
             if part in results and "load_1min" in results[part] for v in results[part]["load_1min"]]
    loads += [v for e in results.get("empty", {}).get("runs", []) for v in e.get("load_1min", ())]
    if loads:
        say(f"  (1-min load average before/after the measured runs: {min(loads):.1f} to {max(loads):.1f} on "
            f"{info['cores_usable']} cores; above ~{info['cores_usable'] / 2:.0f} with nothing else running is the "
            "benchmark itself (the pool); higher means other processes competed for the CPU and wall times are "
            "inflated)")
    if loads and max(loads) > info["cores_usable"] + 0.5:
        say("  (the machine was busy: wall-time figures (MB/s, rerun, +1%, Prefect's share of wall) are inflated or "
            "noisy; CPU-time figures hold better)")
    say(f"  (benchmark took {fmt_s(time.perf_counter() - bench_started)})")

    results["report"] = out
    (work / f"results-{label}.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    (work / f"results-{label}.txt").write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"\n(results in {work / f'results-{label}.json'}; profiles in {work}/profile-*.html)")
    if not args.keep:
        for folder in (wh, work / f"wh-{label}-noprefect", work / "wh-warmup", work / f"wh-{label}-empty",
                       work / "empty-raw"):
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(ROOT))
    if argv[:1] == ["core"]:
        p = argparse.ArgumentParser(prog="run.py core")
        p.add_argument("raw", type=Path)
        p.add_argument("out", type=Path)
        p.add_argument("--profile", type=Path)
        a = p.parse_args(argv[1:])
        core_child(a.raw, a.out, a.profile)
        return 0
    if argv[:1] == ["cli"]:  # run.py cli OUT.json PROFILE.html -- gleaner arguments
        cli_child(Path(argv[1]), Path(argv[2]), argv[4:] if argv[3:4] == ["--"] else argv[3:])
        return 0
    if argv[:1] == ["pipeline"]:
        p = argparse.ArgumentParser(prog="run.py pipeline")
        p.add_argument("raw", type=Path)
        p.add_argument("warehouse", type=Path)
        p.add_argument("out", type=Path)
        p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        p.add_argument("--batch-mb", type=float, default=BATCH_MB)
        p.add_argument("--profile", type=Path)
        a = p.parse_args(argv[1:])
        pipeline_child(a.raw, a.warehouse, a.out, a.workers, a.batch_mb, a.profile)
        return 0
    parser = argparse.ArgumentParser(description="Gleaner's benchmark (see bench/README.md)")
    parser.add_argument("--mb", type=float, default=100.0, help="corpus size in MB on disk (default 100; 1000 for 1 GB)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gleaner-bench"),
                        help="folder for the corpus, warehouses, logs and results (default /tmp/gleaner-bench)")
    parser.add_argument("--only", help="comma-separated parts to run: core, e2e, workers1 (`gleaner run --workers 1`), "
                        "incremental (= acceptance: EMPTY, RERUN and +1%% runs and the three acceptance checks; implies e2e), pipeline (without Prefect; Prefect's share needs "
                        "e2e too), profile (the whole run without Prefect under pyinstrument, and with incremental "
                        "the rerun and +1%% runs); default all")
    parser.add_argument("--no-profile", action="store_true", help="no pyinstrument profiles at all")
    parser.add_argument("--profile-pipeline", action="store_true",
                        help="add the profile part to --only (it is in the default set)")
    parser.add_argument("--profile-core", action="store_true",
                        help="also profile the core steps alone (slow: 2-3x the core steps' time)")
    parser.add_argument("--profile-e2e", action="store_true",
                        help="also profile `gleaner run` end to end in-process (main thread only; one more full run)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
