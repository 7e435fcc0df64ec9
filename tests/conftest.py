from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

#: Real camera recordings shared beside the checkout (absent in a user's clone).
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip("../shared/samples (real camera recordings) is not present")
    return SAMPLES


# Numba compiles (or loads its cache) on the first call of each kernel; that is
# not a slow example, so no per-example deadline.
settings.register_profile("spikelens", deadline=None)
settings.load_profile("spikelens")
