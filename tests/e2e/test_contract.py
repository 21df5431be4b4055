"""The deployed API keeps the contract it publishes: Schemathesis loads the live
`GET /v1/openapi.json`, generates requests from it (coverage of each field's boundaries, fuzzing,
and stateful sequences that follow one call's answer into the next) and checks every answer.

Run with Schemathesis' own runner: its pytest loader for a schema known only at run time (here,
once the stack is deployed) does not work with pytest 9. The presigned upload URL is S3's, not
this API's, so it is not part of the document.
"""

import subprocess
import sys
from pathlib import Path

CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance"]
# Per operation and phase: enough to reach every documented answer, few enough that the run
# takes well under a minute on the local stack.
EXAMPLES = 25
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_every_answer_is_one_the_document_allows(stack, tmp_path):
    run = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{stack.api_url}/v1/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(EXAMPLES),
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,  # whatever Schemathesis keeps between runs stays out of the working tree
        capture_output=True,
        text=True,
        timeout=600,
    )

    print(run.stdout)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
