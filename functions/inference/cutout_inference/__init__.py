"""Cutout's inference function (its handler module is the Lambda entry point)."""
