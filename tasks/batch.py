"""One batch of dumps through its steps: extract, clean and segment, each gated, then staged.

Every step has one shape: a list of records in, the records it passes on out, and each dump
it refused, with the reason, written to the batch's Ledger, which also keeps the counters
all steps share (records in and out, lines, removals, articles). A step says only what it
makes of a record and why it refuses one (MapStep), what it makes of all the records at
once (ColumnStep: clean, which decides on the batch's lines as one column), or which suite
decides (GateStep); the loop in run_steps does the rest. The same steps run in a Prefect task, a pool process, a
Dask worker or the benchmark.

This is the CPU-heavy part of a run, and the unit of parallel work: batches are
independent, so a worker process or a Dask worker can take any of them. A worker needs
only the batch's dumps (paths below --raw), the profile and the stage folder, and hands
back a small BatchOutcome; the articles themselves go to the stage (tasks/stage.py).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd

from tasks import stage, validate
from tasks.clean import clean_batch
from tasks.extract import ExtractError, extract_dump
from tasks.memory import freeze_imports
from tasks.models import CleanedDump, Dump, ExtractedDump, Quarantine, SegmentedDump
from tasks.profile import Profile, load_profile
from tasks.segment import segment_dump


@dataclass(frozen=True)
class LoadedDump:
    """A dump whose articles passed every gate of its batch."""

    dump: Dump
    encoding: str
    articles: int


Record = TypeVar("Record", Dump, ExtractedDump, CleanedDump, SegmentedDump, LoadedDump)


@dataclass
class Ledger:
    """What a batch's steps refused and counted, shared by all of them."""

    quarantined: list[Quarantine] = field(default_factory=list)
    gates: list[validate.GateResult] = field(default_factory=list)  # in the order validated
    counts: Counter[str] = field(default_factory=Counter)  # '<step> in', '<step> out' (refused: the difference), 'lines', ...

    def refuse(self, quarantine: Quarantine) -> None:
        self.quarantined.append(quarantine)


class Step(Protocol):
    name: str

    def __call__(self, records: list, ledger: Ledger) -> list:
        """The records passed on; each one refused goes to the ledger, with its reason."""


def dump_of(record: Any) -> Dump:
    return record if isinstance(record, Dump) else record.dump


@dataclass(frozen=True)
class MapStep:
    """A step that makes one record of each: fn(record), or a refusal of the dump when fn
    raises `refuses` (its message is the reason). tally: counters a made record adds to."""

    name: str
    fn: Callable[[Any], Any]
    refuses: type[Exception] | tuple[type[Exception], ...] = ()
    tally: Callable[[Any], dict[str, int]] | None = None

    def __call__(self, records: list, ledger: Ledger) -> list:
        made = []
        for record in records:
            try:
                made.append(self.fn(record))
            except self.refuses as exc:
                ledger.refuse(Quarantine(dump_of(record), self.name, str(exc)))
                continue
            if self.tally is not None:
                ledger.counts.update(self.tally(made[-1]))
        return made


@dataclass(frozen=True)
class ColumnStep:
    """A step that makes a record of each of the batch's records all at once, in order, for it
    decides on all of their lines as one column: fn(records). It refuses none."""

    name: str
    fn: Callable[[list], list]

    def __call__(self, records: list, ledger: Ledger) -> list:
        return self.fn(records)


@dataclass(frozen=True)
class GateStep:
    """A Great Expectations gate: the suite validates frame(records); the records whose dump
    it blamed are refused with the suite's reasons, the others pass unchanged."""

    suite: str  # expectations/<suite>.json, named after the step it guards
    frame: Callable[[list], pd.DataFrame]

    @property
    def name(self) -> str:
        return f"validate-{self.suite}"

    def __call__(self, records: list, ledger: Ledger) -> list:
        result = validate.validate_frame(self.suite, self.frame(records))
        ledger.gates.append(result)
        passed, refused = split_by_gate(records, result)
        for quarantine in refused:
            ledger.refuse(quarantine)
        return passed


@dataclass(frozen=True)
class StageStep:
    """The batch's articles and removals written to the run's stage, as one step's output."""

    folder: Path
    batch_no: int
    name: str = "stage"

    def __call__(self, records: list[SegmentedDump], ledger: Ledger) -> list[LoadedDump]:
        stage.write_batch(self.folder, self.batch_no, records)
        ledger.counts["removed"] += sum(len(s.removed) for s in records)
        ledger.counts["articles"] += sum(len(s.articles) for s in records)
        return [LoadedDump(s.dump, s.encoding, len(s.articles)) for s in records]


def split_by_gate(records: list[Record], result: validate.GateResult) -> tuple[list[Record], list[Quarantine]]:
    """The records whose dump passed the gate, and a quarantine for each that failed."""
    passed, refused = [], []
    for record in records:
        reasons = result.failures.get(dump_of(record).source_file)
        if reasons:
            refused.append(Quarantine(dump_of(record), result.step, "; ".join(sorted(set(reasons)))))
        else:
            passed.append(record)
    return passed, refused


def batch_steps(site: Profile, stage_folder: Path, batch_no: int) -> list[Step]:
    """The steps of one batch, in order."""
    return [
        MapStep("extract", lambda dump: extract_dump(dump, site), ExtractError,
                tally=lambda extracted: {"lines": len(extracted.lines)}),
        GateStep("extract", validate.extract_frame),
        ColumnStep("clean", lambda extracted: clean_batch(extracted, site)),
        GateStep("clean", validate.clean_frame),
        MapStep("segment", lambda cleaned: segment_dump(cleaned, site)),
        GateStep("segment", validate.segment_frame),
        StageStep(stage_folder, batch_no),
    ]


#: how a step is called: step(records, ledger), or that wrapped (a Prefect task run per step)
StepRunner = Callable[[Step, list, Ledger], list]


def call_step(step: Step, records: list, ledger: Ledger) -> list:
    return step(records, ledger)


def run_steps(steps: list[Step], records: list, ledger: Ledger, run_step: StepRunner = call_step) -> list:
    """records through every step in turn, counting what goes in and out of each."""
    for step in steps:
        ledger.counts[f"{step.name} in"] += len(records)
        records = run_step(step, records, ledger)
        ledger.counts[f"{step.name} out"] += len(records)
    return records


@dataclass
class BatchOutcome:
    batch_no: int
    loaded: list[LoadedDump] = field(default_factory=list)
    quarantined: list[Quarantine] = field(default_factory=list)
    gates: list[validate.GateResult] = field(default_factory=list)  # in the order validated
    #: the Ledger's counters: records into and out of each step, and 'lines' (extracted),
    #: 'removed' (boilerplate lines and fragments), 'articles' (staged)
    counts: dict[str, int] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)  # the step names, in order


def process_batch(dumps: list[Dump], profile: str, batch_no: int, stage_folder: Path,
                  run_step: StepRunner = call_step) -> BatchOutcome:
    """Extract, clean and segment `dumps`, validating each step's output; stage what passed."""
    freeze_imports()
    ledger = Ledger()
    steps = batch_steps(load_profile(profile), stage_folder, batch_no)
    loaded = run_steps(steps, dumps, ledger, run_step)
    return BatchOutcome(batch_no, loaded, ledger.quarantined, ledger.gates, dict(ledger.counts),
                        [step.name for step in steps])
