"""The profile: ``ci`` (CI, nbgrader autograde and validate) or ``full``.

It only picks how much data and how many epochs experiments use, never what a test checks.
"""

from __future__ import annotations

import os
from typing import NamedTuple, TypeVar

T = TypeVar("T")

PROFILE_NAMES: tuple[str, ...] = ("ci", "full")
"""Values of the ``HW_PROFILE`` environment variable."""


class Profile(NamedTuple):
    """How much work experiments do: ``"ci"`` (small and fast) or ``"full"``.

    Use :meth:`pick` to choose a size, e.g. ``epochs = profile().pick(ci=2, full=20)``.
    """

    name: str

    @property
    def is_ci(self) -> bool:
        """True in the ``ci`` profile."""
        return self.name == "ci"

    def pick(self, ci: T, full: T) -> T:
        """``ci`` in the ``ci`` profile, ``full`` otherwise."""
        return ci if self.is_ci else full


def profile() -> Profile:
    """The current profile, from the environment.

    ``HW_PROFILE`` (``"ci"`` or ``"full"``) wins when set; otherwise the profile is ``ci`` when
    ``CI`` or ``NBGRADER_EXECUTION`` is non-empty (CI, nbgrader autograde/validate), else ``full``.
    """
    explicit = os.environ.get("HW_PROFILE", "").strip().lower()
    if explicit:
        if explicit not in PROFILE_NAMES:
            raise ValueError(
                f"HW_PROFILE={os.environ['HW_PROFILE']!r} is not a profile; set the environment "
                f"variable HW_PROFILE to one of {list(PROFILE_NAMES)} or unset it."
            )
        return Profile(explicit)
    if os.environ.get("CI") or os.environ.get("NBGRADER_EXECUTION"):
        return Profile("ci")
    return Profile("full")
