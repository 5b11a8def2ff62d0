"""How well the scores do what they claim: detection cards on labelled data, the fine-tuning calibration study
and the predictions drawn from it."""
