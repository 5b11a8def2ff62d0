"""How well the scores do what they claim: the fine-tuning calibration study."""
