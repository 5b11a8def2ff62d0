"""The bootstrap interval of AUROC (the bfloat16 evidence in benchmarks/precision.py compares against it)."""

import numpy as np

from auditor.evaluation.stats import bootstrap_auroc


def test_interval_brackets_the_point_and_narrows_with_more_records():
    rng = np.random.default_rng(1)
    widths = []
    for n in (60, 600):
        positive = np.arange(n) < n // 3
        interval = bootstrap_auroc(positive, rng.normal(size=n) + positive, rounds=400)
        assert interval.low < interval.mean < interval.high
        widths.append(interval.high - interval.low)
    assert widths[1] < widths[0] / 2


def test_perfect_separation_and_point_only():
    positive = np.array([True, True, False, False])
    assert bootstrap_auroc(positive, np.array([3.0, 2.0, 1.0, 0.0]), rounds=100).low == 1.0
    point = bootstrap_auroc(positive, np.array([0.0, 2.0, 1.0, 3.0]), rounds=0)
    assert point.mean == point.low == point.high == 0.25
