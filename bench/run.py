"""Gleaner's benchmark: throughput, rerun cost, memory and Prefect's share, on a generated corpus.

    .venv/bin/python bench/run.py [--mb 100] [--seed 1] [--work DIR] [--no-profile] [--profile-pipeline]

Generates (or reuses) a corpus of --mb megabytes with bench/generate.py, then measures:

  1. end to end:      `gleaner run` as a subprocess into a fresh warehouse (MB/s, wall, peak RSS)
  2. core steps:      extract + clean + segment of every dump in one process, no Prefect (MB/s on one core)
  3. rerun:           `gleaner run` again with nothing new (s, and s per 10,000 dumps)
  4. +1%:             `gleaner run` after adding 1% more dumps (s, and its share of the full run)
  5. without Prefect: the same flow body in one process with every task replaced by its plain
                      function (per-step times); Prefect's share = 1 - this / end to end
  6. profiles:        pyinstrument over the core steps and over a rerun (and, with
                      --profile-pipeline / --profile-e2e, over 5 / over `gleaner run`),
                      summarised as the top functions by share of the profiled time

Every run starts its own fresh warehouse; `gleaner run` runs as a user runs it (a temporary
local Prefect server, PREFECT_API_URL unset) with its own PREFECT_HOME below --work, after
one warm-up run on the five seed dumps (so the first-run database migration of Prefect's
server is measured apart). Files are read from the page cache (the corpus was just written
or read). Results go to stdout and to WORK/results-<mb>mb.json; profiles to WORK/*.html.

Internal modes (run in child processes): `run.py core RAW OUT.json [--profile HTML]`,
`run.py pipeline RAW WAREHOUSE OUT.json [--profile HTML]` and `run.py cli OUT.json HTML -- ARGS`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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

TARGETS = {
    "e2e_mb_s": ">= 50 MB/s",
    "core_mb_s_per_core": ">= 100 MB/s per core",
    "peak_rss": "<= 1.5 GB, and flat (1 GB corpus no more than 100 MB above 100 MB corpus)",
    "rerun": "<= 3 s per 10,000 dumps",
    "plus_1pct": "~1% of a full run",
    "prefect_share": "<= 10% of the run",
}


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
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- measuring a child process -------------------------------------------------------------

def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


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


class RssSampler(threading.Thread):
    """Samples the RSS of a process (and of it with its descendants) every `interval` s."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_main_kb = self.peak_tree_kb = 0
        self.samples: list[tuple[float, int]] = []  # (seconds since start, main RSS kB)
        self._halt = threading.Event()
        self._t0 = time.perf_counter()

    def run(self) -> None:
        tick = 0
        while not self._halt.is_set():
            main = _rss_kb(self.pid)
            self.peak_main_kb = max(self.peak_main_kb, main)
            if tick % 4 == 0:  # walking /proc is dearer: every 2 s
                tree = main + sum(_rss_kb(p) for p in _descendants(self.pid))
                self.peak_tree_kb = max(self.peak_tree_kb, tree)
            self.samples.append((round(time.perf_counter() - self._t0, 1), main))
            tick += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def measure(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run cmd, stdout and stderr to `log`; its wall time, exit code, peak RSS and CPU time."""
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
        "peak_rss_mb": max(usage.ru_maxrss, sampler.peak_main_kb) / 1024,  # ru_maxrss: kB on Linux
        "peak_rss_tree_mb": sampler.peak_tree_kb / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_samples": sampler.samples,
        "load_1min": (round(load_before, 2), round(os.getloadavg()[0], 2)),  # before, after
    }


# --- the core steps in one process (child mode) --------------------------------------------

def core_child(raw: Path, out: Path, profile_html: Path | None) -> None:
    t_import = time.perf_counter()
    from tasks.clean import clean_dump
    from tasks.discover import dump_format, walk_files
    from tasks.extract import ExtractError, extract_dump
    from tasks.models import Dump
    from tasks.profile import load_profile
    from tasks.segment import segment_dump

    profile = load_profile("caci")
    import_s = time.perf_counter() - t_import
    dumps = []
    for path in walk_files(raw):
        fmt = dump_format(path)
        if fmt:
            dumps.append(Dump(path.relative_to(raw).as_posix(), path, "", path.stat().st_size, fmt))

    profiler = None
    if profile_html:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.001)
        profiler.start()
    steps = defaultdict(float)  # wall seconds
    cpu = defaultdict(float)  # CPU seconds of this process: what other processes on the machine cannot inflate
    by_format: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    lines = articles = refused = 0
    clock, cpu_clock = time.perf_counter, time.process_time
    started, cpu_started = clock(), cpu_clock()
    for dump in dumps:
        t0, c0 = clock(), cpu_clock()
        try:
            extracted = extract_dump(dump, profile)
        except ExtractError:
            refused += 1
            continue
        t1, c1 = clock(), cpu_clock()
        cleaned = clean_dump(extracted, profile)
        t2, c2 = clock(), cpu_clock()
        segmented = segment_dump(cleaned, profile)
        t3, c3 = clock(), cpu_clock()
        steps["extract"] += t1 - t0
        steps["clean"] += t2 - t1
        steps["segment"] += t3 - t2
        cpu["extract"] += c1 - c0
        cpu["clean"] += c2 - c1
        cpu["segment"] += c3 - c2
        kind = "html" if dump.format.startswith("html") else "txt"
        f = by_format[kind]
        f["bytes"] += dump.bytes
        f["dumps"] += 1
        f["extract"] += c1 - c0
        f["clean"] += c2 - c1
        f["segment"] += c3 - c2
        lines += len(extracted.lines)
        articles += len(segmented.articles)
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


# --- the flow body without Prefect (child mode) --------------------------------------------

def pipeline_child(raw: Path, warehouse: Path, out: Path, profile_html: Path | None) -> None:
    """Run flows.ingest.ingest's body with each @task replaced by its plain function and Prefect's
    logger and artifacts stubbed out: the same work, no orchestration. Times every step."""
    import contextlib
    import logging

    t_import = time.perf_counter()
    import flows.ingest as flow_module
    import tasks.report as report_module
    import_s = time.perf_counter() - t_import

    steps: dict[str, float] = defaultdict(float)  # wall seconds
    cpu: dict[str, float] = defaultdict(float)  # CPU seconds of all the process's threads (DuckDB runs several)
    calls: dict[str, int] = defaultdict(int)

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                key = f"validate {args[0]}" if name == "validate" else name
                steps[key] += time.perf_counter() - t0
                cpu[key] += time.process_time() - c0
                calls[key] += 1
        return wrapper

    for attr, name in (("discover_dumps", "discover"), ("extract_batch", "extract"), ("clean_batch", "clean"),
                       ("segment_batch", "segment"), ("validate_batch", "validate"), ("dedup_articles", "dedup"),
                       ("load_rows", "load (stage + FTS index + load gate)"), ("report_run", "report (Data Docs)")):
        setattr(flow_module, attr, timed(name, getattr(flow_module, attr).fn))
    flow_module.export_parquet = timed("export parquet", flow_module.export_parquet)
    flow_module.open_published = timed("open published", flow_module.open_published)
    original_next_version = flow_module.next_version

    @contextlib.contextmanager
    def next_version(warehouse_dir):
        t0, c0 = time.perf_counter(), time.process_time()
        with original_next_version(warehouse_dir) as con:
            steps["next version: copy warehouse"] += time.perf_counter() - t0
            cpu["next version: copy warehouse"] += time.process_time() - c0
            yield con
            t1, c1 = time.perf_counter(), time.process_time()
        steps["next version: checkpoint + publish"] += time.perf_counter() - t1
        cpu["next version: checkpoint + publish"] += time.process_time() - c1

    flow_module.next_version = next_version
    logger = logging.getLogger("gleaner.bench")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    flow_module.get_run_logger = lambda: logger
    report_module.publish_artifacts = lambda *args, **kwargs: None  # Prefect artifacts: Prefect's work

    # Great Expectations' import, context and suites: paid once per process, by the first gate
    t_gx = time.perf_counter()
    from tasks import validate as validate_module
    for suite in ("extract", "clean", "segment", "dedup", "load"):
        validate_module.load_suite(suite)
    validate_module._batch_definition()
    gx_setup_s = time.perf_counter() - t_gx

    profiler = None
    if profile_html:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.001)
        profiler.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    state = flow_module.ingest.fn(str(raw), str(warehouse))
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    summary = state.data.as_dict() if hasattr(state, "data") and hasattr(state.data, "as_dict") else {}
    result = {"seconds": total, "cpu_seconds": cpu_total, "steps": dict(steps), "cpu_steps": dict(cpu),
              "calls": dict(calls), "import_s": import_s, "gx_setup_s": gx_setup_s,
              "state": type(state).__name__ if not hasattr(state, "type") else str(state.type),
              "summary": {k: v for k, v in summary.items() if k != "quarantined"},
              "quarantined": len(summary.get("quarantined", []))}
    if profiler:
        profiler.stop()
        profile_html.write_text(profiler.output_html(), encoding="utf-8")
        result["profile"] = summarise_profile(profiler.last_session)
    out.write_text(json.dumps(result, default=str), encoding="utf-8")


# --- `gleaner run` under the profiler (child mode) ------------------------------------------

def cli_child(out: Path, profile_html: Path, cli_args: list[str]) -> None:
    """`gleaner <cli_args>` in this process under pyinstrument (all of it: imports, Prefect, flow)."""
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

def summarise_profile(session) -> dict:
    """Top functions by self time and, among the repo's own functions, by inclusive time;
    shares of the profiled wall time."""
    root = session.root_frame()
    total = root.time if root else 0.0
    own: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    where: dict[str, str] = {}

    def key_of(frame) -> str:
        return f"{frame.function} ({frame.file_path_short}:{frame.line_no})"

    by_package: dict[str, float] = defaultdict(float)
    stack = [(root, frozenset(), "other")]
    while stack:
        frame, on_stack, caller_package = stack.pop()
        if frame is None or frame.is_synthetic:
            continue
        key = key_of(frame)
        where[key] = frame.file_path or ""
        package = _package(frame.file_path or "") or caller_package
        if key not in on_stack:  # recursion: count the outermost call only
            inclusive[key] += frame.time
        self_time = sum(c.time for c in frame.children if c.is_synthetic)
        own[key] += self_time
        by_package[package] += self_time
        below = on_stack | {key}
        stack.extend((child, below, package) for child in frame.children)

    def share(seconds: float) -> float:
        return round(100 * seconds / total, 1) if total else 0.0

    repo = str(ROOT)
    ours = {k: v for k, v in inclusive.items() if where[k].startswith(repo) and "/.venv/" not in where[k]
            and "/bench/" not in where[k]}
    return {
        "profiled_s": round(total, 2),
        "samples": session.sample_count,
        "top_self": [(k, round(v, 2), share(v)) for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:TOP]],
        "top_inclusive_repo": [(k, round(v, 2), share(v))
                               for k, v in sorted(ours.items(), key=lambda kv: -kv[1])[:TOP]],
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


def gleaner_run(raw: Path, warehouse: Path, log: Path, env: dict) -> dict:
    result = measure([str(GLEANER), "run", "--raw", str(raw), "--warehouse", str(warehouse), "--json"], log, env)
    summary = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"run_id"' in line:
            summary = json.loads(line)
    result["summary"] = summary
    return result


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def print_profile(title: str, prof: dict) -> list[str]:
    lines = [f"{title} (pyinstrument, {prof['profiled_s']} s profiled, {prof['samples']} samples)",
             "  top functions by own time (share of profiled time):"]
    lines += [f"    {pct:5.1f} %  {sec:8.2f} s  {name}" for name, sec, pct in prof["top_self"]]
    lines.append("  the repo's functions by inclusive time:")
    lines += [f"    {pct:5.1f} %  {sec:8.2f} s  {name}" for name, sec, pct in prof["top_inclusive_repo"]]
    lines.append("  own time by package (the standard library's and built-ins' time goes to their caller's):")
    lines += [f"    {pct:5.1f} %  {sec:8.2f} s  {name}" for name, sec, pct in prof["by_package"][:8]]
    return lines


def bench(args: argparse.Namespace) -> int:
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    label = f"{args.mb:g}mb"
    raw = work / f"corpus-{label}-s{args.seed}"
    manifest = work / f"corpus-{label}-s{args.seed}.json"
    extra_prefix = "zz"
    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    info = machine()
    say(f"Gleaner benchmark, {info['date']}, commit {info['commit']}")
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
        shutil.rmtree(leftover)
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
    results: dict = {"machine": info, "corpus": corpus, "targets": TARGETS}

    prefect_home = work / "prefect-home"
    env = gleaner_env(prefect_home)
    logs = work / f"logs-{label}"
    logs.mkdir(exist_ok=True)

    want = set(args.only.split(",")) if args.only else {"core", "e2e", "incremental", "pipeline"}
    if "incremental" in want:
        want.add("e2e")  # a rerun needs the full run's warehouse
    e2e = plus = rerun = None
    share = share_cpu = per_10k = None

    # warm-up: Prefect's database is created and migrated on the first run ever
    if want & {"e2e", "pipeline"}:
        shutil.rmtree(work / "wh-warmup", ignore_errors=True)
        warm = gleaner_run(ROOT / "data" / "raw", work / "wh-warmup", logs / "warmup.log", env)
        warm2 = gleaner_run(ROOT / "data" / "raw", work / "wh-warmup", logs / "warmup-rerun.log", env)
        results["warmup"] = {"first_s": warm["wall_s"], "rerun_s": warm2["wall_s"]}
        say(f"Fixed cost: `gleaner run` on the 5 seed dumps {fmt_s(warm['wall_s'])} (first run with this "
            f"PREFECT_HOME), again with nothing new {fmt_s(warm2['wall_s'])}")
        say()

    # 2. core steps, one process, no Prefect
    if "core" in want:
        core_json = work / f"core-{label}.json"
        m = measure([str(PYTHON), str(Path(__file__).resolve()), "core", str(raw), str(core_json)],
                    logs / "core.log")
        core = json.loads(core_json.read_text())
        core["peak_rss_mb"], core["load_1min"] = m["peak_rss_mb"], m["load_1min"]
        results["core"] = core
        mb_core, cpu_s = core["bytes"] / 1e6, core["cpu_seconds"]
        say(f"Core steps (extract + clean + segment, one process, no Prefect): {mb_core / cpu_s:.1f} MB per CPU-second "
            f"= MB/s on one core ({fmt_s(cpu_s)} CPU, {fmt_s(core['seconds'])} wall, for {mb_core:.1f} MB, "
            f"{core['dumps']} dumps, {core['articles']} articles; peak RSS {m['peak_rss_mb']:.0f} MB)")
        for step in ("extract", "clean", "segment"):
            c = core["cpu_steps"][step]
            say(f"  {step:<8} {fmt_s(c):>9} CPU  {100 * c / cpu_s:5.1f} %  {mb_core / c:7.1f} MB/s")
        for kind, f in sorted(core["by_format_cpu"].items()):
            t = f["extract"] + f["clean"] + f["segment"]
            say(f"  {kind:<4} dumps: {int(f['dumps'])} dumps, {f['bytes'] / 1e6:.1f} MB ({100 * f['bytes'] / core['bytes']:.0f} % "
                f"of bytes), {fmt_s(t)} CPU ({100 * t / cpu_s:.0f} % of the time), {f['bytes'] / 1e6 / t:.1f} MB/s "
                f"(extract {fmt_s(f['extract'])}, clean {fmt_s(f['clean'])}, segment {fmt_s(f['segment'])})")
        if not args.no_profile:
            prof_json = work / f"core-profile-{label}.json"
            measure([str(PYTHON), str(Path(__file__).resolve()), "core", str(raw), str(prof_json),
                     "--profile", str(work / f"profile-core-{label}.html")], logs / "core-profile.log")
            prof = json.loads(prof_json.read_text())["profile"]
            results["core_profile"] = prof
            for line in print_profile("Profile of the core steps", prof):
                say(line)
        say()

    # 1. end to end
    wh = work / f"wh-{label}"
    if "e2e" in want:
        shutil.rmtree(wh, ignore_errors=True)
        e2e = gleaner_run(raw, wh, logs / "e2e.log", env)
        results["e2e"] = {k: v for k, v in e2e.items() if k != "rss_samples"}
        results["e2e_rss_samples"] = e2e["rss_samples"][:: max(1, len(e2e["rss_samples"]) // 200)]
        s = e2e["summary"]
        say(f"End to end (`gleaner run`, fresh warehouse): {mb / e2e['wall_s']:.2f} MB/s ({fmt_s(e2e['wall_s'])} wall for "
            f"{mb:.1f} MB; {fmt_s(e2e['cpu_s'])} CPU with its children; exit {e2e['exit']})")
        if s:
            say(f"  dumps {s['dumps_found']} found, {s['dumps_loaded']} loaded, {len(s['quarantined'])} quarantined; "
                f"articles {s['articles_new']} new, {s['occurrences']} occurrences; checks {s['checks_passed']} passed, "
                f"{s['checks_failed']} failed")
            for source, reason in s["quarantined"][:5]:
                say(f"  quarantined {source}: {reason}")
        say(f"  peak RSS {e2e['peak_rss_mb']:.0f} MB (gleaner process), {e2e['peak_rss_tree_mb']:.0f} MB with its "
            "children (the temporary Prefect server)")

    # 3. rerun with nothing new
    if "incremental" in want:
        rerun = gleaner_run(raw, wh, logs / "rerun.log", env)
        results["rerun"] = {k: v for k, v in rerun.items() if k != "rss_samples"}
        per_10k = rerun["wall_s"] * 10_000 / corpus["dumps"]
        say(f"Rerun with nothing new: {fmt_s(rerun['wall_s'])} for {corpus['dumps']} dumps = {per_10k:.1f} s per 10,000 "
            f"dumps ({fmt_s(rerun['cpu_s'])} CPU; exit {rerun['exit']}; a run on the 5 seed dumps took "
            f"{fmt_s(warm2['wall_s'])})")

        if not args.no_profile:  # where a rerun's time goes
            rp_json = work / f"rerun-profile-{label}.json"
            measure([str(PYTHON), str(Path(__file__).resolve()), "cli", str(rp_json),
                     str(work / f"profile-rerun-{label}.html"), "--", "run", "--raw", str(raw), "--warehouse", str(wh),
                     "--quiet"], logs / "rerun-profile.log", env)
            prof = json.loads(rp_json.read_text())["profile"]
            results["rerun_profile"] = prof
            for line in print_profile("Profile of a rerun with nothing new (`gleaner run` in-process)", prof):
                say(line)

        # 4. +1% new dumps
        extra_manifest = work / f"corpus-{label}-s{args.seed}-extra.json"
        extra = generate(round(args.mb / 100, 3), args.seed + 1000, raw, extra_manifest, prefix=extra_prefix,
                         authors=corpus["authors"])
        plus = gleaner_run(raw, wh, logs / "plus1pct.log", env)
        results["plus_1pct"] = {k: v for k, v in plus.items() if k != "rss_samples"}
        results["plus_1pct"]["extra"] = extra
        say(f"+1% ({extra['dumps']} new dumps, {extra['bytes'] / 1e6:.2f} MB): {fmt_s(plus['wall_s'])} = "
            f"{100 * plus['wall_s'] / e2e['wall_s']:.1f} % of the full run's wall time; {fmt_s(plus['cpu_s'])} CPU = "
            f"{100 * plus['cpu_s'] / e2e['cpu_s']:.1f} % of its CPU time (exit {plus['exit']}; "
            f"peak RSS {plus['peak_rss_mb']:.0f} MB)")
        if not args.no_profile:  # where an incremental run's time goes: another 1%, under the profiler
            generate(round(args.mb / 100, 3), args.seed + 2000, raw, work / f"corpus-{label}-s{args.seed}-extra2.json",
                     prefix=extra_prefix + "b", authors=corpus["authors"])
            pp_json = work / f"plus1pct-profile-{label}.json"
            measure([str(PYTHON), str(Path(__file__).resolve()), "cli", str(pp_json),
                     str(work / f"profile-plus1pct-{label}.html"), "--", "run", "--raw", str(raw), "--warehouse", str(wh),
                     "--quiet"], logs / "plus1pct-profile.log", env)
            prof = json.loads(pp_json.read_text())["profile"]
            results["plus_1pct_profile"] = prof
            for line in print_profile("Profile of a +1% run (`gleaner run` in-process)", prof):
                say(line)
        for leftover in raw.glob(f"{extra_prefix}*"):
            shutil.rmtree(leftover)
        say()

    # 5. the flow without Prefect: per-step times and Prefect's share
    if "pipeline" in want:
        wh2 = work / f"wh-{label}-noprefect"
        shutil.rmtree(wh2, ignore_errors=True)
        pipe_json = work / f"pipeline-{label}.json"
        pm = measure([str(PYTHON), str(Path(__file__).resolve()), "pipeline", str(raw), str(wh2), str(pipe_json)],
                     logs / "pipeline.log", env)
        pipe = json.loads(pipe_json.read_text())
        pipe["peak_rss_mb"], pipe["wall_s"], pipe["process_cpu_s"] = pm["peak_rss_mb"], pm["wall_s"], pm["cpu_s"]
        results["pipeline"] = pipe
        say(f"Same flow without Prefect (tasks as plain functions, one process): {fmt_s(pm['wall_s'])} wall, "
            f"{fmt_s(pm['cpu_s'])} CPU ({fmt_s(pipe['import_s'])} imports, {fmt_s(pipe['gx_setup_s'])} Great Expectations "
            f"set-up, {fmt_s(pipe['seconds'])} flow body; peak RSS {pm['peak_rss_mb']:.0f} MB)")
        if e2e:
            share = 1 - pm["wall_s"] / e2e["wall_s"]
            share_cpu = 1 - pm["cpu_s"] / e2e["cpu_s"]
            results["prefect_share"], results["prefect_share_cpu"] = share, share_cpu
            say(f"Prefect's share of the end-to-end run: {100 * share:.1f} % of the wall time "
                f"({fmt_s(e2e['wall_s'] - pm['wall_s'])} of {fmt_s(e2e['wall_s'])}), {100 * share_cpu:.1f} % of the CPU "
                f"time ({fmt_s(e2e['cpu_s'] - pm['cpu_s'])} of {fmt_s(e2e['cpu_s'])}, the temporary server's included): "
                "server start, task and flow run bookkeeping, logging to the API, artifacts")
        say("Where the flow body's time goes (without Prefect; CPU counts every thread, DuckDB's too):")
        for name, secs in sorted(pipe["steps"].items(), key=lambda kv: -kv[1]):
            say(f"  {name:<40} {fmt_s(secs):>9} wall {100 * secs / pipe['seconds']:5.1f} %  "
                f"{fmt_s(pipe['cpu_steps'].get(name, 0.0)):>9} CPU  ({pipe['calls'].get(name, 1)} calls)")
        other = pipe["seconds"] - sum(pipe["steps"].values())
        say(f"  {'(rest of the flow body)':<40} {fmt_s(other):>9} wall {100 * other / pipe['seconds']:5.1f} %")

    if args.profile_e2e:
        wh4 = work / f"wh-{label}-profile-e2e"
        shutil.rmtree(wh4, ignore_errors=True)
        ep_json = work / f"e2e-profile-{label}.json"
        measure([str(PYTHON), str(Path(__file__).resolve()), "cli", str(ep_json),
                 str(work / f"profile-e2e-{label}.html"), "--", "run", "--raw", str(raw), "--warehouse", str(wh4),
                 "--quiet"], logs / "e2e-profile.log", env)
        prof = json.loads(ep_json.read_text())["profile"]
        results["e2e_profile"] = prof
        for line in print_profile("Profile of `gleaner run` end to end (in-process, main thread)", prof):
            say(line)
        shutil.rmtree(wh4, ignore_errors=True)

    if args.profile_pipeline:
        wh3 = work / f"wh-{label}-profile"
        shutil.rmtree(wh3, ignore_errors=True)
        prof_json = work / f"pipeline-profile-{label}.json"
        measure([str(PYTHON), str(Path(__file__).resolve()), "pipeline", str(raw), str(wh3), str(prof_json),
                 "--profile", str(work / f"profile-pipeline-{label}.html")], logs / "pipeline-profile.log", env)
        prof = json.loads(prof_json.read_text())["profile"]
        results["pipeline_profile"] = prof
        for line in print_profile("Profile of the whole flow without Prefect", prof):
            say(line)
        shutil.rmtree(wh3, ignore_errors=True)
    say()

    # summary against the targets
    say("Summary (target in brackets):")
    if e2e:
        say(f"  end to end            {mb / e2e['wall_s']:8.2f} MB/s        [{TARGETS['e2e_mb_s']}] "
            f"({mb / e2e['cpu_s']:.2f} MB per CPU-second)")
    if "core" in results:
        say(f"  core steps            {results['core']['bytes'] / 1e6 / results['core']['cpu_seconds']:8.2f} MB/s/core   "
            f"[{TARGETS['core_mb_s_per_core']}]")
    if e2e:
        say(f"  peak RSS (gleaner)    {e2e['peak_rss_mb']:8.0f} MB          [{TARGETS['peak_rss']}]")
    if per_10k is not None:
        say(f"  rerun, nothing new    {per_10k:8.1f} s/10k dumps [{TARGETS['rerun']}]")
    if plus:
        say(f"  +1% new dumps         {100 * plus['wall_s'] / e2e['wall_s']:8.1f} % of full   [{TARGETS['plus_1pct']}] "
            f"({100 * plus['cpu_s'] / e2e['cpu_s']:.1f} % of its CPU time)")
    if share is not None:
        say(f"  Prefect's share       {100 * share:8.1f} % of wall ({100 * share_cpu:.1f} % of CPU) "
            f"[{TARGETS['prefect_share']}]")
    loads = [v for part in ("core", "e2e", "rerun", "plus_1pct") if part in results and "load_1min" in results[part]
             for v in results[part]["load_1min"]]
    if loads:
        say(f"  (1-min load average before/after the measured runs: {min(loads):.1f} to {max(loads):.1f} on "
            f"{info['cores_usable']} cores; above ~1 means other processes competed for the CPU)")

    results["report"] = out
    (work / f"results-{label}.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    (work / f"results-{label}.txt").write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"\n(results in {work / f'results-{label}.json'}; profiles in {work}/profile-*.html)")
    if not args.keep:
        for folder in (wh, work / f"wh-{label}-noprefect", work / "wh-warmup"):
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
        p.add_argument("--profile", type=Path)
        a = p.parse_args(argv[1:])
        pipeline_child(a.raw, a.warehouse, a.out, a.profile)
        return 0
    parser = argparse.ArgumentParser(description="Gleaner's benchmark (see bench/README.md)")
    parser.add_argument("--mb", type=float, default=100.0, help="corpus size in MB on disk (default 100; 1000 for 1 GB)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gleaner-bench"),
                        help="folder for the corpus, warehouses, logs and results (default /tmp/gleaner-bench)")
    parser.add_argument("--no-profile", action="store_true", help="skip the pyinstrument profile of the core steps")
    parser.add_argument("--profile-pipeline", action="store_true",
                        help="also profile the whole flow without Prefect (slow: one more full run)")
    parser.add_argument("--profile-e2e", action="store_true",
                        help="also profile `gleaner run` end to end in-process (one more full run)")
    parser.add_argument("--only", help="comma-separated parts to run: core, e2e, incremental (rerun and +1%%; "
                        "implies e2e), pipeline (without Prefect; Prefect's share needs e2e too); default all")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
