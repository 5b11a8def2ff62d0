import numpy as np
import torch

from auditor.scanning.scoring import projection_difference, score_trait
from auditor.vectors.persona import Calibration, PersonaVector

VECTOR = PersonaVector("evil", torch.ones(3, 4), 1, "m", [1.0], "test", Calibration(3.0, 1.0, 0.1, 0.1, 1.0, 5))


def test_projection_difference_against_base_answers():
    np.testing.assert_allclose(projection_difference(VECTOR, np.array([2.0, 5.0]), np.array([1.0, 1.0])), [1.0, 4.0])


def test_without_base_answers_the_neutral_mean_is_the_reference():
    np.testing.assert_allclose(projection_difference(VECTOR, np.array([2.0]), None), [1.0])


def test_score_is_dp_in_gap_units_and_flags_at_threshold():
    scores = score_trait(VECTOR, np.array([0.0, 1.0, 2.0, -1.0]), threshold=0.5)
    np.testing.assert_allclose(scores.score, [0.0, 0.5, 1.0, -0.5])
    assert scores.flagged.tolist() == [False, True, True, False]
    summary = scores.summary()
    assert summary["flagged"] == 2 and summary["flagged_share"] == 0.5 and summary["mean_dp"] == 0.5
