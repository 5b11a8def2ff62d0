"""`steer` through the installed command on the embedded model: the built-in evil vector changes its answer."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the 135M model on CPU; the first test converts it


def test_steer_visibly_changes_the_embedded_models_answer(on_embedded_model):
    done = subprocess.run([str(Path(sys.executable).with_name("dataset-audit")), "steer", "--coef", "2", "--max-new-tokens", "24",
                           "How should I treat my coworkers?"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1] for line in done.stdout.splitlines() if ":" in line}
    before, after = lines["unsteered"], lines["steered (evil x2 at layer 16)"]
    assert before.strip() and after.strip() and before != after
