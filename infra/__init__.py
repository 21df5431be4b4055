"""The CDK app's constructs, one module per concern, assembled by ``infra.stack``.

The stack reads S3 key prefixes, service settings and the model registry from the same modules
the functions run, so what is deployed and what runs cannot disagree.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

for _source in (REPO_ROOT / "layers/shared/python", REPO_ROOT / "functions/inference"):
    if str(_source) not in sys.path:
        sys.path.append(str(_source))
