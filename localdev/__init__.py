"""Local development tooling: LocalStack on this host (``localstack_host``), the stack deployed on
it (``stack``, i.e. `make up` / `make down`), the network files (``fetch_model``, which builds the
quantized ones with ``quantize``) and the interpreter of the project's Python (``python``).
Standard library only except ``fetch_model``'s registry and ``quantize`` (onnx, onnxruntime), so
any Python 3.11+ can run the rest before the venv exists.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What `make up` and the CDK CLI keep between runs (LocalStack keeps its own, under .localstack/).
LOCAL = REPO / ".local"
