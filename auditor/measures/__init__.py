"""Measuring a model along its persona vectors: prompt projections (the deployment monitor) and how far
fine-tuning shifted a model."""
