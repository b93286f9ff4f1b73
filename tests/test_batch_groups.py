"""How `course grade` splits a class into groups (one nbgrader process each) over its jobs."""

from __future__ import annotations

import pytest

from hw_utils.grading.batch import GROUP_SIZE, group_sizes


@pytest.mark.parametrize("count", [0, 1, 2, 5, 6, 7, 12, 13, 19, 23, 100])
@pytest.mark.parametrize("jobs", [1, 2, 3, 8])
def test_every_submission_once_in_groups_the_jobs_finish_together(count, jobs):
    sizes = group_sizes(count, jobs)
    assert sum(sizes) == count
    assert all(1 <= size <= GROUP_SIZE for size in sizes)
    assert not sizes or max(sizes) - min(sizes) <= 1
    if count >= jobs:
        assert len(sizes) % jobs == 0, "a last round with idle jobs"


def test_a_class_of_19_on_2_jobs():
    assert group_sizes(19, 2) == [5, 5, 5, 4]
    assert group_sizes(3, 8) == [1, 1, 1]
