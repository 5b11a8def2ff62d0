"""Arrow columns made from buffers: what `pa.array` makes of the same values, without importing pandas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from auditor.scanning.result import arrow_array
from tests.helpers import imported_after

STRINGS = pa.list_(pa.string())
CASES = [
    ([3, 1, 2], pa.int64()), (np.array([5, -1], dtype=np.int64), pa.int64()), ([], pa.int64()),
    (np.array([0.5, np.nan, -2.0]), pa.float64()), (np.array([1.0, 2.0]), pa.float64()),
    (np.array([True, False, True] * 7), pa.bool_()), ([], pa.bool_()),
    (["a", "é ü", None, "", "日本"], pa.string()), (["x"], pa.string()), ([], pa.string()),
    ([["a", "bb"], [], None, ["é"]], STRINGS), ([[], []], STRINGS), ([], STRINGS),
]


@pytest.mark.parametrize(("values", "kind"), CASES)
def test_arrow_array_is_what_pa_array_makes(values, kind):
    ours = arrow_array(values, kind)
    ours.validate(full=True)
    assert ours.equals(pa.array(values, kind, from_pandas=True))  # NaN -> null, as the scores table stores it


def test_arrow_arrays_import_no_pandas():
    code = ("import numpy as np, pyarrow as pa; from auditor.scanning.result import arrow_array; "
            "arrays = [arrow_array([1, 2], pa.int64()), arrow_array(np.array([np.nan]), pa.float64()), "
            "arrow_array([True], pa.bool_()), arrow_array(['a', None], pa.string()), "
            "arrow_array([['a'], []], pa.list_(pa.string()))]")
    assert imported_after(code, ("pandas",)) == []
