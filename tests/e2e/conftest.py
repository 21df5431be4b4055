"""The end-to-end suites reuse the hostile corpus and photo helpers of the unit tests, which own them."""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1] / "unit"))
