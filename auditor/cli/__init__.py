"""The `dataset-audit` command line: one group, its commands registered from the modules beside this one."""

from __future__ import annotations

import logging

import click

from ..version import __version__
from .calibrate import calibrate
from .common import CONTEXT
from .doctor import doctor
from .scan import evaluate, filter_command, merge, report, scan, validate
from .training import monitor, shift, steer, train
from .vectors import extract, traits


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="dataset-audit")
def main() -> None:
    """Audit chat fine-tuning data for samples that would teach a model a trait
    (evil, sycophantic, hallucinating, ...) before you train on it.

    Each sample's response is compared with the model's own response to the same prompt along
    a persona vector: the projection difference dP. See `dataset-audit scan --help`;
    `dataset-audit doctor` shows what this installation runs on.

    Exit codes: 0 passed, 1 a --fail-on gate failed (scan) or bad records (validate),
    2 usage or input error.

    \b
    Examples:
      dataset-audit validate train.jsonl
      dataset-audit scan train.jsonl --out audit-out
      dataset-audit filter audit-out --drop-flagged --out clean.jsonl
    """
    logger = logging.getLogger("auditor")
    if not logger.handlers:  # progress notes (e.g. the one-time model conversion) on stderr
        logger.addHandler(logging.StreamHandler())
        logger.setLevel(logging.INFO)


for _command in (scan, merge, filter_command, validate, evaluate, report, extract, traits, train, steer, monitor,
                 shift, calibrate, doctor):
    main.add_command(_command)
