"""Shared package of the CNN course.

Students import the submodules from their notebooks:

- :mod:`hw_utils.data`: the offline procedural image dataset, CIFAR loaders, splits, batch loader,
  and :func:`hw_utils.data.profile` (CI/grading profile versus the full one).
- :mod:`hw_utils.training`: ``EpochResult``, ``FitResult``, a reference trainer, device choice,
  ``seed_everything``.
- :mod:`hw_utils.plot`: learning curves, experiment comparisons, confusion matrices, image grids.
- :mod:`hw_utils.experiments`: run an experiment and keep its JSON record.
- :mod:`hw_utils.regularization`: the course's weight penalties and the loaders of a regularised
  run (hw3's course references).
- :mod:`hw_utils.checks`: the helpers that visible tests use; their messages say what differs.

Instructors use :mod:`hw_utils.grading` through the ``course`` command (``python -m hw_utils``).
"""

__version__ = "0.1.0"
