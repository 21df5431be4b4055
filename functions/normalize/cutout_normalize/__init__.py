"""Cutout's normalize function (its handler module is the Lambda entry point)."""
