"""Persona vectors: the file format, fitting from contrastive activations, extraction from a trait's
description with a judge, which vector a command uses, and the extraction report."""
