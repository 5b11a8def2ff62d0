import copy

import numpy as np
import pytest

from auditor.measures.shift import fine_tuning_shift, prompt_projections, question_prompts
from auditor.steering.hooks import Steering, steered


def test_a_model_has_no_shift_from_itself(tiny_lm, tiny_vector):
    (shift,) = fine_tuning_shift(tiny_lm, tiny_lm, [tiny_vector])
    assert shift.trait == "evil" and shift.n == 20 and shift.layer == 1
    assert shift.shift == pytest.approx(0.0, abs=1e-6)


def test_a_model_moved_along_the_vector_shifts_by_that_much(tiny_lm, tiny_vector):
    """Adding c * v at the vector's layer moves every projection there by c * |v|."""
    tuned = copy.copy(tiny_lm)
    tuned.model = copy.deepcopy(tiny_lm.model)
    with steered(tuned, [Steering(tiny_vector, coef=0.5)]):
        (shift,) = fine_tuning_shift(tiny_lm, tuned, [tiny_vector])
    assert shift.shift == pytest.approx(0.5 * float(tiny_vector.directions[1].norm()), rel=1e-4)
    assert shift.stderr == pytest.approx(0.0, abs=1e-4)


def test_projections_do_not_depend_on_batch_size(tiny_lm, tiny_vector):
    prompts = question_prompts(tiny_lm, "evil")
    assert np.allclose(prompt_projections(tiny_lm, tiny_vector, prompts, 1),
                       prompt_projections(tiny_lm, tiny_vector, prompts, 7), atol=1e-4)
