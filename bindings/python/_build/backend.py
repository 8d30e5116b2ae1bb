"""PEP 517 build backend: maturin, with the stable ABI where it can carry the API.

The zero-copy views implement the buffer protocol, which is part of Python's
limited API only from 3.11 on. On Python >= 3.11 this backend asks maturin
for an abi3 wheel (one wheel for 3.11 and every later version); on 3.9 and
3.10 it builds for the running version. Any MATURIN_PEP517_ARGS the user set
are kept, and take precedence.
"""

import os
import sys

if sys.version_info >= (3, 11) and "MATURIN_PEP517_ARGS" not in os.environ:
    os.environ["MATURIN_PEP517_ARGS"] = "--features abi3"

from maturin import *  # noqa: E402,F401,F403  (the PEP 517 hooks)
