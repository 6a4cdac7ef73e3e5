"""Fuzz the parsers for a bounded time: decode, split_lines, html_to_lines, clean, segment.

    .venv/bin/python bench/fuzz.py --seconds 120 [--seed N] [--targets dumps,html] [--shrink-known]

Hypothesis drives it, with the strategies and checks of tests/test_properties.py: arbitrary
bytes, text and lines; generated nested HTML pages; realistic dumps assembled from the
site's building blocks, shuffled and mutated; well-formed dumps that must give back the
articles they were built from. The targets take turns in batches (a fresh seed each)
until the time is up. Every crash and every property violation is shrunk to a minimal
example and printed once, with how often it came back. Instances of the known bugs
(test_properties.KNOWN_BUGS, each pinned by a strict-xfail test) are counted, not shrunk,
unless --shrink-known. A per-example deadline (--deadline-ms) turns a pathologically slow
input (a regular expression that backtracks) into a finding too.

Ends with a summary line; exits 1 when it found a crash or a violation that is no known
bug, else 0.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import DeadlineExceeded, FlakyFailure  # noqa: E402

import test_properties as props  # noqa: E402
from tasks.extract import ExtractError, decode, html_to_lines, split_lines  # noqa: E402
from tasks.models import REMOVED_CATEGORIES  # noqa: E402


# --- targets: a strategy and a check returning Findings (a crash is any other exception) ---------

def check_decode(data: bytes) -> list[props.Finding]:
    try:
        text, encoding = decode(data)
    except ExtractError:
        return []
    if not isinstance(text, str) or not encoding:
        return [props.Finding("decode", f"returned {type(text).__name__}, encoding {encoding!r}")]
    return []


def check_split_lines(text: str) -> list[props.Finding]:
    lines = split_lines(text)
    if any("\n" in line or "\r" in line for line in lines):
        return [props.Finding("split_lines", "a line holds a line break")]
    if "".join(lines) != text.replace("\r", "").replace("\n", ""):
        return [props.Finding("split_lines", "text lost or added")]
    return []


def check_html_text(text: str) -> list[props.Finding]:
    lines, removed = html_to_lines(text, props.PROFILE, "page.html")
    findings = []
    if any("\n" in line for line in lines):
        findings.append(props.Finding("html_lines", "a line holds a line break"))
    for r in removed:
        if not 1 <= r.line_no <= len(lines) or r.category not in REMOVED_CATEGORIES:
            findings.append(props.Finding("html_removals", f"removal {r}"))
    return findings


def check_lines(lines: list[str]) -> list[props.Finding]:
    run = props.run_lines(lines)
    return (props.check_conservation(run) + props.check_removals(run) + props.check_idempotent(run)
            + props.check_no_boilerplate_in_articles(run) + props.check_articles(run)
            + props.check_article_text(run) + props.check_deterministic(run))


def check_well_formed(dump) -> list[props.Finding]:
    lines, expected = dump
    return props.check_round_trip(lines, expected) + props.check_dump(lines)


any_bytes = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda bom, data: bom + data, st.sampled_from(props.BOMS), st.binary(max_size=500)),
    st.builds(lambda t, enc: t.encode(enc, errors="replace"), st.text(max_size=500),
              st.sampled_from(["utf-8", "cp1252", "latin-1", "koi8-r", "cp1251", "utf-16", "gb18030", "shift_jis"])),
    st.builds(lambda lines, enc: "\n".join(lines).encode(enc, errors="replace"),
              st.lists(st.sampled_from(props.SEED_LINES), max_size=8), st.sampled_from(["utf-8", "cp1252", "utf-16"])),
)
html_soup = st.text(st.sampled_from("<>/=\"' abcdivpsanbrimgtlexy!-&;#x0123\n\u00a0"), max_size=400)


def targets(known_bugs: bool) -> dict[str, tuple[st.SearchStrategy, object]]:
    return {
        "decode": (any_bytes, check_decode),
        "split_lines": (st.text(max_size=300), check_split_lines),
        "html_text": (st.text(max_size=400) | html_soup, check_html_text),
        "html_pages": (props.html_pages(), props.check_html),
        "lines": (props.any_lines, check_lines),
        "dumps": (props.dumps(known_bugs=known_bugs), props.check_dump),
        "well_formed": (props.well_formed_dumps(known_bugs=known_bugs), check_well_formed),
    }


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Found:
    target: str
    kind: str  # 'crash', 'slow', 'violation' or 'known bug X'
    message: str
    example: str
    seed: int
    hits: int = 1


class Violation(AssertionError):
    pass


class TimeUp(BaseException):
    """Raised inside an example when the run is out of time: hypothesis lets it through."""


def short(value: object, limit: int = 800) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def fuzz_batch(name: str, strategy, check, batch_seed: int, examples: int, deadline_ms: int,
               shrink_known: bool, known_seen: Counter, tried: Counter, hard_stop: float = float("inf")) -> Found | None:
    """One hypothesis run of a target; the minimal failing example, if it failed. Past
    hard_stop the run is cut short, with the smallest failing example found so far."""
    last: dict[str, object] = {}

    @seed(batch_seed)
    @settings(max_examples=examples, deadline=deadline_ms, database=None, derandomize=False,
              report_multiple_bugs=False, print_blob=False, phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value):
        if time.monotonic() > hard_stop:
            raise TimeUp
        tried[name] += 1
        last["current"] = value
        try:
            findings = check(value)
        except Exception as exc:
            last.update(value=value, error=exc)
            raise
        bad = [f for f in findings if f.known is None or shrink_known]
        for f in findings:
            if f.known is not None:
                known_seen[f.known] += 1
        if bad:
            last.update(value=value, error=Violation("; ".join(str(f) for f in bad[:3])))
            raise last["error"]

    cut_short = ""
    try:
        run()
        return None
    except TimeUp:
        if "error" not in last:
            return None
        raised: BaseException = last["error"]
        cut_short = " (out of time: shrinking cut short)"
    except Exception as exc:  # hypothesis re-raises the minimal example's error
        raised = exc
    error = last.get("error", raised)
    if isinstance(raised, (DeadlineExceeded, FlakyFailure)) and not isinstance(error, Violation):
        kind, message = "slow", f"{type(raised).__name__}: {str(raised).splitlines()[0][:300]}"
        value = last.get("current")
    elif isinstance(error, Violation):
        message, value = str(error), last.get("value")
        known = message.split("[known bug ", 1)[1][0] if "[known bug " in message else None
        kind = f"known bug {known}" if known else "violation"
    else:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        kind, value = "crash", last.get("value")
        message = f"{type(error).__name__}: {str(error)[:300]} (at {Path(frame.filename).name}:{frame.lineno})"
    return Found(name, kind, message + cut_short, short(value), batch_seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="time budget (default 120)")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: random, printed)")
    parser.add_argument("--batch", type=int, default=200, help="examples per batch of a target (default 200)")
    parser.add_argument("--deadline-ms", type=int, default=2000,
                        help="slowest an example may be before it is a finding (default 2000)")
    parser.add_argument("--targets", default=None, help="comma-separated subset of the targets")
    parser.add_argument("--shrink-known", action="store_true",
                        help="shrink and print instances of the known bugs too (and let the generators make them)")
    args = parser.parse_args(argv)

    all_targets = targets(known_bugs=args.shrink_known)
    chosen = args.targets.split(",") if args.targets else list(all_targets)
    unknown = [t for t in chosen if t not in all_targets]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from {list(all_targets)}")
    base_seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"fuzz: {args.seconds:.0f} s over {', '.join(chosen)}; base seed {base_seed}", flush=True)

    started = time.monotonic()
    hard_stop = started + args.seconds + max(5.0, 0.1 * args.seconds)  # a last shrink may run over a little
    found: dict[tuple[str, str, str], Found] = {}
    known_seen: Counter = Counter()
    tried: Counter = Counter()
    batches = 0
    while time.monotonic() - started < args.seconds:
        name = chosen[batches % len(chosen)]
        strategy, check = all_targets[name]
        result = fuzz_batch(name, strategy, check, base_seed + batches, args.batch, args.deadline_ms,
                            args.shrink_known, known_seen, tried, hard_stop)
        batches += 1
        if result is None:
            continue
        key = (result.target, result.kind, result.message.split(":")[0])
        if key in found:
            found[key].hits += 1
            continue
        found[key] = result
        print(f"\n[{time.monotonic() - started:6.1f} s] {result.target}: {result.kind}\n"
              f"  {result.message}\n  minimal example: {result.example}\n"
              f"  (seed {result.seed})", flush=True)
    elapsed = time.monotonic() - started

    new = [f for f in found.values() if not f.kind.startswith("known")]
    print("\nexamples tried per target: " + ", ".join(f"{t} {tried[t]}" for t in chosen))
    if known_seen:
        print("known-bug instances seen: " + ", ".join(f"{k} {n}" for k, n in sorted(known_seen.items()))
              + "  (tests/test_properties.py KNOWN_BUGS)")
    for f in found.values():
        print(f"  {f.kind:12} {f.target:12} x{f.hits}: {f.message[:150]}")
    crashes = sum(f.kind == "crash" for f in new)
    slow = sum(f.kind == "slow" for f in new)
    print(f"fuzz: {sum(tried.values())} examples in {elapsed:.0f} s ({batches} batches, base seed {base_seed}): "
          f"{crashes} crashes, {slow} slow inputs, {len(new) - crashes - slow} new property violations, "
          f"known bugs seen: {' '.join(sorted(known_seen)) or 'none'}")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
