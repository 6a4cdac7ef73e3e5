"""The `gleaner` command.

    gleaner run --raw DIR --warehouse DIR [--profile NAME|FILE] [--batch-mb MB]
                [--task-runner process|thread|dask] [--workers N] [--dask-address ADDR] [--quiet] [--json]
    gleaner sql DIR [--as-of RUN_ID] [DUCKDB_SHELL_ARGS ...]
    gleaner search DIR TERMS [--limit N] [--json]
    gleaner rollback DIR RUN_ID
    gleaner vacuum DIR [--keep N]
    gleaner profile suggest --raw DIR [--profile NAME|FILE] [--min-dumps N] [--top K] [--json]

Exit status of run: 0 when every dump was loaded, 1 when any was quarantined or the run
failed, 2 when the command could not start (bad arguments, missing --raw, busy warehouse).
The other commands exit 0, or 2 with a one-line reason (no warehouse there, no such run,
a bad query, a busy warehouse); `sql` exits as the DuckDB shell does.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

# Before Prefect is imported: no usage reports leave the machine.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from gleaner.runners import RUNNERS, RunnerError, ServerStartError, build_task_runner, prefect_api

if TYPE_CHECKING:
    from gleaner.suggest import Candidate, Suggestions

EXIT_OK, EXIT_QUARANTINED, EXIT_USAGE = 0, 1, 2
#: `gleaner vacuum` keeps this many runs unless told otherwise: a month of daily runs
DEFAULT_KEEP = 30


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gleaner", description="Scraped article dumps in, a DuckDB warehouse out.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="load every new dump below --raw into the warehouse")
    run.add_argument("--raw", required=True, type=Path, help="folder of raw dumps (.txt, .html, .htm, optionally .gz)")
    run.add_argument("--warehouse", required=True, type=Path, help="warehouse folder (created if missing)")
    run.add_argument("--profile", default="caci", help="site profile: a bundled name or a .toml file (default: caci)")
    run.add_argument("--batch-mb", type=float, default=16.0, help="megabytes of dumps per task run (default: 16)")
    run.add_argument("--task-runner", choices=RUNNERS, default="process",
                     help="where the batches are processed: process = a pool of worker processes on this "
                          "machine (default), thread = threads of this process (for debugging), dask = the "
                          "workers of a Dask cluster (needs --dask-address and PREFECT_API_URL)")
    run.add_argument("--workers", type=_positive_int,
                     help=f"processes or threads for --task-runner process|thread (default: the number of CPUs, "
                          f"{os.cpu_count()} here)")
    run.add_argument("--dask-address", metavar="ADDR",
                     help="scheduler of the Dask cluster for --task-runner dask, e.g. tcp://HOST:8786; "
                          "its workers must reach --raw, --warehouse and the Prefect server")
    output = run.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print only errors")
    output.add_argument("--json", action="store_true", help="print the run summary as one JSON object")

    sql = commands.add_parser("sql", help="a DuckDB shell on the warehouse (read-only)",
                              description="Opens the DuckDB shell with the warehouse's tables and views visible by "
                                          "name. Arguments after DIR go to the shell, e.g. -c 'SELECT ...' or -json.")
    sql.add_argument("warehouse", type=Path, help="warehouse folder")
    sql.add_argument("--as-of", metavar="RUN_ID", help="the warehouse as it was after that run")

    search = commands.add_parser("search", help="full-text search of the articles, best match first")
    search.add_argument("warehouse", type=Path, help="warehouse folder")
    search.add_argument("terms", help="words (any order, stemmed, accents and case ignored), \"a phrase\", "
                                      "AND / OR / -word")
    search.add_argument("--limit", type=_positive_int, default=10, help="at most this many articles (default: 10)")
    search.add_argument("--json", action="store_true", help="print the hits as one JSON array")

    rollback = commands.add_parser("rollback", help="undo a run and every run after it")
    rollback.add_argument("warehouse", type=Path, help="warehouse folder")
    rollback.add_argument("run_id", help="the first run to undo (see load_history)")

    vacuum = commands.add_parser("vacuum", help="expire old snapshots and delete the files only they used")
    vacuum.add_argument("warehouse", type=Path, help="warehouse folder")
    vacuum.add_argument("--keep", type=_positive_int, default=DEFAULT_KEEP,
                        help=f"keep the snapshots of the last N runs, each readable with --as-of and able to be "
                             f"rolled back (default: {DEFAULT_KEEP})")

    profile = commands.add_parser("profile", help="work on site profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    suggest = profile_commands.add_parser(
        "suggest", help="list recurring lines of the dumps below --raw that look like boilerplate")
    suggest.add_argument("--raw", required=True, type=Path, help="folder of raw dumps (.txt, .html, .htm, optionally .gz)")
    suggest.add_argument("--profile", default="caci",
                         help="profile to compare with: a bundled name or a .toml file (default: caci)")
    suggest.add_argument("--min-dumps", type=_positive_int, default=2,
                         help="list lines found in at least this many dumps (default: 2)")
    suggest.add_argument("--top", type=_positive_int, default=50, help="list at most this many lines (default: 50)")
    suggest.add_argument("--json", action="store_true", help="print the candidates as one JSON object")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def format_summary(summary: dict) -> str:
    lines = [
        f"Warehouse:   {summary['warehouse']}",
        f"Dumps:       {summary['dumps_found']} found, {summary['dumps_loaded']} loaded, "
        f"{summary['dumps_skipped']} already loaded, {len(summary['quarantined'])} quarantined",
        f"Articles:    {summary['articles_new']} new, {summary['articles_updated']} updated, "
        f"{summary['occurrences']} occurrences",
        "Removed:     " + (", ".join(f"{cat} {n}" for cat, n in summary["removed_by_category"].items()) or "nothing"),
        f"Checks:      {summary['checks_passed']} passed, {summary['checks_failed']} failed, "
        f"{summary['checks_skipped']} skipped (nothing to check)",
    ]
    lines += [f"Quarantined: {source} - {reason}" for source, reason in summary["quarantined"]]
    return "\n".join(lines)


def prepare_gates(raw: Path, warehouse: Path) -> None:
    """Import Great Expectations ahead of the first gate when the run will have something to
    validate (about 3 s; a run with nothing new never imports it)."""
    from tasks.discover import likely_new
    from tasks.load import published_dumps
    from tasks.validate import warm_up

    if likely_new(raw, published_dumps(warehouse)):
        warm_up()


def run(args: argparse.Namespace) -> int:
    if args.quiet:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # before Prefect reads its settings
    from prefect.settings import PREFECT_API_URL

    try:
        runner = build_task_runner(args.task_runner, args.workers, args.dask_address, PREFECT_API_URL.value())
    except RunnerError as exc:
        print(f"gleaner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.raw.is_dir():
        print(f"gleaner: --raw {args.raw}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    from tasks.profile import ProfileError, load_profile

    try:
        load_profile(args.profile)  # refuse a broken profile before Prefect starts
    except ProfileError as exc:
        print(f"gleaner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from flows.ingest import ingest
    from tasks.load import WarehouseBusy

    try:
        with prefect_api(while_starting=lambda: prepare_gates(args.raw, args.warehouse)):
            state = ingest.with_options(task_runner=runner)(
                str(args.raw), str(args.warehouse), profile=args.profile, batch_mb=args.batch_mb, return_state=True)
            summary = state.result(raise_on_failure=False)
    except ServerStartError as exc:
        print(f"gleaner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(summary, WarehouseBusy):
        print(f"gleaner: {summary}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(summary, BaseException):
        print(f"gleaner: the run failed: {summary}", file=sys.stderr)
        return EXIT_QUARANTINED
    report = summary.as_dict()
    if args.json:
        print(json.dumps(report, default=str))
    elif not args.quiet:
        print(format_summary(report))
    else:
        for source, reason in report["quarantined"]:
            print(f"quarantined {source}: {reason}", file=sys.stderr)
    return EXIT_OK if state.is_completed() else EXIT_QUARANTINED


def format_suggestions(suggestions: Suggestions, shown: list[Candidate], profile: str) -> str:
    new = sum(c.covered_by is None for c in shown)
    lines = [
        f"{len(suggestions.candidates)} candidate lines in {suggestions.dumps_read} dumps, {len(shown)} shown, "
        f"{new} of them new to profile {profile}",
        f"{'dumps':>5} {'times':>5}  {'profile':<17}  line",
    ]
    lines += [f"{c.dumps:>5} {c.occurrences:>5}  {c.covered_by or 'NEW':<17}  {c.text}" for c in shown]
    return "\n".join(lines)


def suggest_command(args: argparse.Namespace) -> int:
    if not args.raw.is_dir():
        print(f"gleaner: --raw {args.raw}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    from gleaner.suggest import suggest
    from tasks.profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"gleaner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    suggestions = suggest(args.raw, profile, args.min_dumps)
    shown = suggestions.candidates[:args.top]
    if args.json:
        print(json.dumps({
            "profile": args.profile,
            "dumps_read": suggestions.dumps_read,
            "total_candidates": len(suggestions.candidates),
            "candidates": [asdict(c) for c in shown],
            "skipped": suggestions.skipped,
        }))
    else:
        print(format_suggestions(suggestions, shown, args.profile))
    for source, reason in suggestions.skipped:
        print(f"gleaner: skipped {source}: {reason}", file=sys.stderr)
    return EXIT_OK


def _fail(message: object) -> int:
    print(f"gleaner: {message}", file=sys.stderr)
    return EXIT_USAGE


def sql_command(args: argparse.Namespace) -> int:
    """Replace this process by the DuckDB shell, the lake attached and selected."""
    from tasks import lake

    shell = Path(sys.executable).with_name("duckdb")
    try:
        snapshot = None
        if args.as_of:
            with lake.open_lake(args.warehouse) as probe:
                snapshot = lake.snapshot_of_run(probe, args.as_of)
        else:
            lake.open_lake(args.warehouse).close()  # a clear refusal, not the shell's
        settings = lake.config()
    except lake.WarehouseError as exc:
        return _fail(exc)
    setup = [f"SET {name} = '{value}'" for name, value in settings.items()] \
        + lake.attach_statements(args.warehouse, read_only=True, snapshot=snapshot) \
        + [f"CREATE TEMP VIEW run_snapshots AS {lake.RUN_SNAPSHOTS_SQL}"]
    os.execv(shell, [str(shell), "-cmd", "; ".join(setup) + ";", *args.shell_args])
    return EXIT_USAGE  # not reached: execv replaced the process


def search_command(args: argparse.Namespace) -> int:
    from tasks import lake
    from tasks.search import SearchError, format_hits, search

    if not lake.exists(args.warehouse):
        return _fail(f"{args.warehouse}: no warehouse here")
    try:
        hits = search(args.warehouse, args.terms, limit=args.limit)
    except SearchError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps([asdict(hit) for hit in hits]))
    elif hits:
        with lake.open_lake(args.warehouse) as con:  # each hit's title and date, as the lake has them
            rows = con.execute("SELECT article_id, title, published_on FROM articles WHERE article_id IN "
                               "(SELECT unnest($ids))", {"ids": [hit.article_id for hit in hits]}).fetchall()
        print(format_hits(hits, {aid: {"title": title, "published_on": day} for aid, title, day in rows}))
    else:
        print(f"no article matches {args.terms!r}")
    return EXIT_OK


def _change_history(change, report) -> int:
    """Run a change of the warehouse's history (it takes the writer lock) and report it."""
    from tasks import lake
    from tasks.load import WarehouseBusy

    try:
        done = change()
    except (lake.WarehouseError, WarehouseBusy) as exc:
        return _fail(exc)
    print(report(done))
    return EXIT_OK


def rollback_command(args: argparse.Namespace) -> int:
    from tasks.history import rollback

    return _change_history(
        lambda: rollback(args.warehouse, args.run_id),
        lambda done: f"rolled back {len(done.rolled_back)} run(s): {', '.join(done.rolled_back) or 'none'}; "
                     f"the warehouse holds the data of snapshot {done.restored_snapshot} again (recorded as run "
                     f"{done.rollback_id}); their dumps are new to the next run")


def vacuum_command(args: argparse.Namespace) -> int:
    from tasks.history import vacuum

    return _change_history(
        lambda: vacuum(args.warehouse, args.keep),
        lambda done: f"kept the last {done.kept_runs} run(s); expired {done.expired_snapshots} snapshot(s), "
                     f"deleted {done.files_deleted} file(s)")


COMMANDS = {"run": run, "sql": sql_command, "search": search_command, "rollback": rollback_command,
            "vacuum": vacuum_command, "profile": suggest_command}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, shell_args = parser.parse_known_args(argv)  # what `sql` does not know goes to the shell
    if shell_args and args.command != "sql":
        parser.error(f"unrecognized arguments: {' '.join(shell_args)}")
    args.shell_args = shell_args
    return COMMANDS[args.command](args)


def console() -> None:
    """The `gleaner` command (pyproject's script): main(), then an exit without the
    interpreter's teardown once every atexit handler has run (Prefect stops its temporary
    server in one). Freeing the objects of Prefect, Great Expectations, pandas and DuckDB one
    by one took 1.3 to 2.6 s of every run, and nothing is left to write by then: files and
    connections are closed where they are used, and logging is flushed here."""
    exit_code: list[int] = []

    def exit_now() -> None:
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        if exit_code:  # main() returned; after an uncaught exception Python exits as usual
            os._exit(exit_code[0])

    atexit.register(exit_now)  # registered first, so it runs last
    exit_code.append(main())
    sys.exit(exit_code[0])


if __name__ == "__main__":
    console()
