"""Bootstrap intervals of means: sound, bounded in memory, and the same draws however they are chunked."""

import numpy as np
import pytest

from auditor.evaluation import stats
from auditor.evaluation.stats import bootstrap_mean, bootstrap_means


def test_bootstrap_interval_surrounds_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small, large = bootstrap_mean(rng.normal(1, 1, 30)), bootstrap_mean(rng.normal(1, 1, 3000))
    assert small.low < small.mean < small.high and large.low < 1 < large.high
    assert large.high - large.low < (small.high - small.low) / 5


def test_resampling_in_chunks_draws_the_same_as_at_once(monkeypatch):
    values = np.random.default_rng(2).normal(0, 1, 500)
    whole = bootstrap_mean(values)
    monkeypatch.setattr(stats, "CHUNK", 7 * 500 + 3)  # 7 rounds at a time: 2000 rounds in 286 chunks
    assert bootstrap_mean(values) == whole


def test_columns_are_resampled_together_and_match_one_at_a_time():
    rng = np.random.default_rng(3)
    columns = np.column_stack([rng.normal(0, 1, 200), rng.normal(5, 2, 200)])
    both = bootstrap_means(columns)
    assert [round(i.mean, 9) for i in both] == [round(columns[:, j].mean(), 9) for j in range(2)]
    alone = bootstrap_means(columns[:, :1])[0]  # the same rows are drawn for each column
    assert (both[0].low, both[0].high) == pytest.approx((alone.low, alone.high), abs=1e-12)
    assert all(i.low < i.mean < i.high for i in both)
    constant = bootstrap_means(np.full((1, 1), 0.25))[0]
    assert (constant.low, constant.mean, constant.high) == (0.25, 0.25, 0.25)
