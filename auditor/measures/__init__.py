"""What fine-tuning did to a model: activation shifts and behaviour measures."""
