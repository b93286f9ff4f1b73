"""Test-wide settings: the CI profile and a non-interactive matplotlib backend.

Set before anything imports hw_utils or starts a kernel, so that nbval's kernels and the grading
subprocesses inherit them.
"""

import os

os.environ["HW_PROFILE"] = "ci"
os.environ["MPLBACKEND"] = "Agg"
