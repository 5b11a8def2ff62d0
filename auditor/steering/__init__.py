"""The model-side training machinery: steering hooks and fine-tuning with preventative steering."""
