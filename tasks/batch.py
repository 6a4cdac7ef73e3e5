"""One batch of dumps through extract, clean and segment, each step gated, then staged.

This is the CPU-heavy part of a run, and the unit of parallel work: batches are
independent, so a worker process or a Dask worker can take any of them. A worker needs
only the batch's dumps (paths below --raw), the profile and the stage folder, and hands
back a small BatchOutcome; the articles themselves go to the stage (tasks/stage.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tasks import stage, validate
from tasks.clean import clean_dump
from tasks.extract import ExtractError, extract_dump
from tasks.models import CleanedDump, Dump, ExtractedDump, Quarantine, SegmentedDump
from tasks.profile import load_profile
from tasks.segment import segment_dump

@dataclass(frozen=True)
class LoadedDump:
    """A dump whose articles passed every gate of its batch."""

    dump: Dump
    encoding: str
    articles: int


Record = TypeVar("Record", ExtractedDump, CleanedDump, SegmentedDump, LoadedDump)


@dataclass
class BatchOutcome:
    batch_no: int
    loaded: list[LoadedDump] = field(default_factory=list)
    quarantined: list[Quarantine] = field(default_factory=list)
    gates: list[validate.GateResult] = field(default_factory=list)  # in the order validated
    lines: int = 0  # extracted lines
    removed: int = 0  # boilerplate lines and fragments removed
    articles: int = 0


def split_by_gate(records: list[Record], result: validate.GateResult) -> tuple[list[Record], list[Quarantine]]:
    """The records whose dump passed the gate, and a quarantine for each that failed."""
    passed, refused = [], []
    for record in records:
        reasons = result.failures.get(record.dump.source_file)
        if reasons:
            refused.append(Quarantine(record.dump, result.step, "; ".join(sorted(set(reasons)))))
        else:
            passed.append(record)
    return passed, refused


def process_batch(dumps: list[Dump], profile: str, batch_no: int, stage_folder: Path) -> BatchOutcome:
    """Extract, clean and segment `dumps`, validating each step's output; stage what passed."""
    site = load_profile(profile)
    outcome = BatchOutcome(batch_no)

    def gate(step: str, records: list[Record]) -> list[Record]:
        result = validate.validate_frame(step, getattr(validate, f"{step}_frame")(records))
        outcome.gates.append(result)
        passed, refused = split_by_gate(records, result)
        outcome.quarantined += refused
        return passed

    extracted = []
    for dump in dumps:
        try:
            extracted.append(extract_dump(dump, site))
        except ExtractError as exc:
            outcome.quarantined.append(Quarantine(dump, "extract", str(exc)))
    outcome.lines = sum(len(e.lines) for e in extracted)
    extracted = gate("extract", extracted)
    cleaned = gate("clean", [clean_dump(e, site) for e in extracted])
    del extracted
    segmented = gate("segment", [segment_dump(c, site) for c in cleaned])
    del cleaned
    stage.write_batch(stage_folder, batch_no, segmented)
    outcome.loaded = [LoadedDump(s.dump, s.encoding, len(s.articles)) for s in segmented]
    outcome.removed = sum(len(s.removed) for s in segmented)
    outcome.articles = sum(len(s.articles) for s in segmented)
    return outcome
