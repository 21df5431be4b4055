#!/usr/bin/env python3
"""CDK entry point: `cdk synth` / `cdk deploy` (or `cdklocal deploy`) with the knobs in cdk.json."""

import aws_cdk as cdk

from infra.settings import StackSettings
from infra.stack import CutoutStack

app = cdk.App()
settings = StackSettings.from_context(app.node)
CutoutStack(app, settings.stack_name, settings)
app.synth()
