"""Cutout's domain: jobs (what one is, its states and transitions, the rules on it), what a client
reads (the job view, the service limits), settings, image types, S3 key names, error codes.

Pure Python with no AWS SDK: every function imports it from the shared layer, and the one
module that talks to AWS is its submodule ``cutout.aws``.
"""
