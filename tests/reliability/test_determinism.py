"""Same inputs and settings give the same scores across runs, batch sizes and thread counts.

Tolerance: 1e-4 on dP (float32 matrix products are summed in a different order per batch shape and
thread count; observed differences are around 1e-6).
"""

import numpy as np
import pytest
import torch

from auditor.config import ScanConfig
from auditor.scanning import scan
from auditor.scanning.projection import ModelProjector
from tests.helpers import cooking

TOLERANCE = 1e-4


@pytest.fixture
def data(jsonl_file):
    return jsonl_file([cooking(i, "Try pasta, then rest. " * (1 + i % 9)) for i in range(40)])


def _dp(tiny_lm, data, monkeypatch, tmp_path, name, **settings):
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(tmp_path / name))  # nothing cached is shared
    config = ScanConfig(inputs=[str(data)], model="tiny", traits=["evil", "sycophantic"], max_new_tokens=4,
                        **settings)
    return np.stack([t.dp for t in scan(config, projector=ModelProjector.with_model(tiny_lm)).traits])


def test_batch_sizes_and_thread_counts_agree(tiny_lm, data, monkeypatch, tmp_path):
    reference = _dp(tiny_lm, data, monkeypatch, tmp_path, "ref", batch_size=1)
    for batch in (7, 32):
        np.testing.assert_allclose(_dp(tiny_lm, data, monkeypatch, tmp_path, f"b{batch}", batch_size=batch),
                                   reference, atol=TOLERANCE)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            np.testing.assert_allclose(_dp(tiny_lm, data, monkeypatch, tmp_path, f"t{n}", batch_size=8),
                                       reference, atol=TOLERANCE)
    finally:
        torch.set_num_threads(threads)


def test_repeated_runs_are_identical(tiny_lm, data, monkeypatch, tmp_path):
    first = _dp(tiny_lm, data, monkeypatch, tmp_path, "a", batch_size=8)
    assert np.array_equal(first, _dp(tiny_lm, data, monkeypatch, tmp_path, "b", batch_size=8))
