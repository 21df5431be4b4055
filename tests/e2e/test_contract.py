"""The deployed API keeps the contract it publishes: Schemathesis loads the live
`GET /v1/openapi.json`, generates requests from it (coverage of each field's boundaries, fuzzing,
and stateful sequences that follow one call's answer into the next) and checks every answer.

Run with Schemathesis' own runner: its pytest loader for a schema known only at run time (here,
once the stack is deployed) does not work with pytest 9. The presigned upload URL is S3's, not
this API's, so it is not part of the document.
"""

import json
import subprocess
import sys
from pathlib import Path

import requests

CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance"]
# Per operation and phase: enough to reach every documented answer, few enough that the run
# takes well under a minute on the local stack.
EXAMPLES = 25
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def document_for_a_key_holder(stack, folder: Path) -> Path:
    """The live document without its API key requirement, for Schemathesis to send the stack's key
    on every request: its coverage phase would otherwise also send requests without one, which
    API Gateway refuses before the function runs, and which LocalStack 2026.3 answers with its own
    body instead of the gateway response's (README, "The API"). tests/e2e/test_clients.py checks
    those refusals."""
    document = requests.get(f"{stack.api_url}/v1/openapi.json", headers=stack.headers, timeout=30).json()
    assert document["security"] == [{"ApiKey": []}]
    del document["security"], document["components"]["securitySchemes"]
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    path = folder / "openapi.json"
    path.write_text(json.dumps(document))
    return path


def test_every_answer_is_one_the_document_allows(stack, tmp_path):
    run = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            document_for_a_key_holder(stack, tmp_path),
            "--url",
            stack.api_url,
            "--header",
            f"x-api-key: {stack.api_key}",
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
