"""Segments: saved, dynamic audiences (definition, catalogue, evaluation)."""
