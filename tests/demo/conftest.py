"""Fixtures of the risk-report tests: the sample library through the binding.

Run by `make demo-tests` (part of `make test`) with PYTHONPATH holding
build/python and samples/, and TWINC_BUILD the build folder."""
import os

import pytest

BUILD = os.environ.get("TWINC_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))


@pytest.fixture(scope="session")
def lib():
    import twinc
    return twinc.load(os.path.join(BUILD, "samples", "libsamples.so"))
