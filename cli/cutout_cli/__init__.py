"""The `cutout` command: remove photo backgrounds through a Cutout deployment's API."""
