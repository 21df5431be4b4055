"""Cutout's domain: job states and transitions, limits and settings, S3 key names, error codes.

Pure Python with no AWS SDK: every function imports it from the shared layer, and the one
module that talks to AWS is ``cutout_aws`` next to it.
"""
