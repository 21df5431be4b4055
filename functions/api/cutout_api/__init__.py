"""Cutout's api function (its handler module is the Lambda entry point)."""
