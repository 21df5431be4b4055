"""Cutout's LocalStack extension: the plugins that let the stack run on a host without Docker."""
