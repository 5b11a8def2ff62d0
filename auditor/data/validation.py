"""`dataset-audit validate`: every record of some inputs parsed, the bad ones grouped by reason (one line per
distinct reason in a file, with its count and first lines), so a file of 10,000 alike errors reads in one line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .files import expand_inputs, read_records
from .hub import HubDataset
from .records import Quarantined

SHOWN_LINES = 5  # line numbers listed per reason


@dataclass
class Problem:
    """One distinct reason in one file: how many records have it, and the first of their lines."""

    source: str
    reason: str
    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.lines) < SHOWN_LINES:
            self.lines.append(line)

    def line(self) -> str:
        if self.count == 1:
            return f"{self.source}:{self.lines[0]}: {self.reason}"
        more = ", ..." if self.count > len(self.lines) else ""
        return (f"{self.source}:{self.lines[0]}: {self.reason} ({self.count} records, lines "
                f"{', '.join(map(str, self.lines))}{more})")


@dataclass
class Validation:
    """What validating some inputs found: the files read, the records, and the problems in reading order."""

    files: list[Path | str | HubDataset]
    total: int = 0
    problems: dict[tuple[str, str], Problem] = field(default_factory=dict)

    @classmethod
    def of(cls, inputs: list[str]) -> Validation:
        found = cls(expand_inputs(inputs))
        for path in found.files:
            for item in read_records(path):
                found.total += 1
                if isinstance(item, Quarantined):
                    key = (item.source, item.reason)
                    found.problems.setdefault(key, Problem(*key)).add(item.line)
        return found

    @property
    def bad(self) -> int:
        return sum(p.count for p in self.problems.values())

    def lines(self, max_errors: int) -> list[str]:
        """One line per problem, at most `max_errors` of them (0: all), and a last line on those left out."""
        problems = list(self.problems.values())
        shown = problems if not max_errors else problems[:max_errors]
        left = problems[len(shown):]
        more = [f"... and {len(left)} more kinds of error in {sum(p.count for p in left)} records "
                "(raise --max-errors to see them)"] if left else []
        return [p.line() for p in shown] + more

    def counts_line(self) -> str:
        files = f"{len(self.files)} file{'s' * (len(self.files) != 1)}"
        records = f"{self.total} record{'s' * (self.total != 1)}"
        return f"{records} in {files}: {self.total - self.bad} good, {self.bad} bad"
