"""The model-side training commands' machinery: steering hooks, fine-tuning with preventative steering,
the fine-tuning shift and the prompt monitor."""
