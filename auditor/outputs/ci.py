"""What a scan hands to CI: GitHub annotations and step summary, JUnit XML, SARIF 2.1.0.

All of them describe the gated samples (with --baseline: the new and changed ones). A finding is
a (sample, trait) that is flagged or breaks a failed gate; it is an error when it breaks a failed
gate, else a warning.
"""

from __future__ import annotations

import html
import json
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from ..config import ScanConfig
from ..files import atomic_write_bytes, atomic_write_text
from ..scanning.result import column, table_traits, trait_sign
from ..text import excerpt
from ..version import __version__
from .gate import GateResult

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


@dataclass(frozen=True)
class Finding:
    """One flagged (sample, trait), with the failed gates it breaks."""

    trait: str
    source: str
    line: int
    sample_id: str
    score: float
    dp: float
    prompt: str
    broken: tuple[str, ...]

    @property
    def level(self) -> str:
        return "error" if self.broken else "warning"

    @property
    def path(self) -> str:
        """The source as a forward-slash path, relative to the current directory when inside it."""
        path = Path(self.source)
        if path.is_absolute() and path.is_relative_to(Path.cwd()):
            path = path.relative_to(Path.cwd())
        return path.as_posix()

    @property
    def message(self) -> str:
        why = f"breaks --fail-on {', '.join(self.broken)}" if self.broken else "flagged"
        return f"{self.trait} score {self.score:.2f} (dP {self.dp:+.3f}), {why}. Prompt: {excerpt(self.prompt, 100)}"


@dataclass(frozen=True)
class CiOutputs:
    """What to hand to CI besides the exit code (--format, --junit, --sarif, and --top rows)."""

    format: str = "text"
    junit: str | None = None
    sarif: str | None = None
    top: int = 10

    @classmethod
    def of(cls, config: ScanConfig) -> CiOutputs:
        return cls(config.format, config.junit, config.sarif, config.top)


def findings(table: pa.Table, results: list[GateResult]) -> list[Finding]:
    """Flagged or gate-breaking (sample, trait) pairs of a scores table, highest score first."""
    broken: dict[tuple[str, str], list[str]] = defaultdict(list)
    for result in results:
        for offender in result.offenders if result.failed else ():
            broken[(offender.sample_id, result.gate.trait)].append(result.gate.text)
    source, line, ids, prompt = (column(table, c) for c in ("source", "line", "sample_id", "prompt"))
    found, concern = [], {}
    for trait in table_traits(table.schema):
        concern[trait] = trait_sign(table.schema, trait)
        score, dp = column(table, f"{trait}_score"), column(table, f"{trait}_dp")
        hit = column(table, f"{trait}_flagged").astype(bool) | np.isin(ids, [s for s, t in broken if t == trait])
        found += [Finding(trait, str(source[i]), int(line[i]), str(ids[i]), float(score[i]), float(dp[i]),
                          str(prompt[i] or ""), tuple(broken.get((str(ids[i]), trait), ())))
                  for i in np.flatnonzero(hit)]
    return sorted(found, key=lambda f: -concern[f.trait] * f.score)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(found: list[Finding], results: list[GateResult], top: int) -> list[str]:
    """`::error`/`::warning` workflow commands: one per failed gate, then one per top-`top` finding."""
    lines = [f"::error title={_escape_property('dataset-audit gate failed')}::{_escape_data(r.verdict)}"
             for r in results if r.failed]
    return lines + [f"::{f.level} file={_escape_property(f.path)},line={f.line},"
                    f"title={_escape_property(f'dataset-audit: {f.trait}')}::{_escape_data(f.message)}"
                    for f in found[:top]]


def _cell(text: str, width: int = 80) -> str:
    return html.escape(excerpt(text, width)).replace("|", "\\|")


def step_summary(found: list[Finding], results: list[GateResult], headline: str, top: int) -> str:
    """A markdown summary for $GITHUB_STEP_SUMMARY: verdict, gate table, top findings."""
    failed = sum(r.failed for r in results)
    verdict = f"FAILED ({failed} of {len(results)} gates)" if failed else f"passed ({len(results)} gates)"
    out = [f"## dataset-audit: {verdict}", "", _cell(headline, 300), ""]
    if results:
        out += ["| gate | result | observed |", "| --- | --- | --- |"]
        out += [f"| {_cell(r.gate.text)} | {'❌ failed' if r.failed else '✅ passed'} | {_cell(r.observed)} |"
                for r in results]
        out.append("")
    if found:
        out += [f"### Top flagged samples ({len(found)} findings)", "",
                "| level | trait | score | dP | where | prompt |", "| --- | --- | ---: | ---: | --- | --- |"]
        out += [f"| {f.level} | {f.trait} | {f.score:.2f} | {f.dp:+.3f} | {_cell(f'{f.path}:{f.line}')} | "
                f"{_cell(f.prompt)} |" for f in found[:top]]
        out.append("")
    return "\n".join(out) + "\n"


def junit_xml(results: list[GateResult]) -> bytes:
    """JUnit XML with one testcase per gate; a failed gate's failure names its top offenders."""
    counts = {"tests": str(len(results)), "failures": str(sum(r.failed for r in results))}
    suites = ET.Element("testsuites", {"name": "dataset-audit", **counts})
    suite = ET.SubElement(suites, "testsuite", {"name": "dataset-audit gates", "errors": "0", "skipped": "0", **counts})
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"dataset-audit.{result.gate.trait}", name=result.gate.text)
        if result.failed:
            message = f"{result.gate.text}: {result.observed}"
            failure = ET.SubElement(case, "failure", type="GateFailed", message=message)
            failure.text = "\n".join(result.lines(shown=50))
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def _artifact_uri(path: str) -> str:
    return Path(path).as_uri() if Path(path).is_absolute() else quote(path)


def sarif_log(found: list[Finding], traits: list[str]) -> dict:
    """A SARIF 2.1.0 log: one rule per trait, one result per finding at its file and line."""
    rules = [{"id": trait, "name": f"{trait.title().replace('_', '')}Sample",
              "shortDescription": {"text": f"Training sample that would push a model toward '{trait}'"},
              "fullDescription": {"text": f"The sample's response projects onto the '{trait}' persona vector "
                                          "more than the model's own answer to the same prompt (dP); its "
                                          "calibrated score is at or over the flag threshold."},
              "defaultConfiguration": {"level": "warning"}} for trait in traits]
    results = [{"ruleId": f.trait, "ruleIndex": traits.index(f.trait), "level": f.level,
                "message": {"text": f.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": _artifact_uri(f.path)},
                                                    "region": {"startLine": max(f.line, 1)}}}],
                "partialFingerprints": {"sampleId/v1": f.sample_id},
                "properties": {"score": f.score, "dp": f.dp}} for f in found]
    driver = {"name": "dataset-audit", "version": __version__, "rules": rules}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}


def write_ci_outputs(config: CiOutputs, table: pa.Table, results: list[GateResult], headline: str) -> list[str]:
    """Write what `config` asks for: --format github ($GITHUB_STEP_SUMMARY), --junit, --sarif. Returns the lines
    to print on stdout (--format github: the annotations)."""
    found = findings(table, results)
    lines = []
    if config.format == "github":
        lines = github_annotations(found, results, config.top)
        if os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as fh:
                fh.write(step_summary(found, results, headline, config.top))
    if config.junit:
        atomic_write_bytes(Path(config.junit), junit_xml(results))
    if config.sarif:
        atomic_write_text(Path(config.sarif), json.dumps(sarif_log(found, table_traits(table.schema)), indent=2))
    return lines
