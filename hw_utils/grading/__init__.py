"""Instructor tooling behind the ``course`` command: build and check the release, execute source
notebooks, grade submissions in a sandbox with real nbgrader, and the demo on sample submissions.

Modules: ``manifest`` lives in :mod:`hw_utils.manifest`; here ``build`` (release, execute),
``check`` (consistency and leaks), ``submissions`` (finding what students handed in),
``autograde`` (one submission in a throwaway course), ``sandbox``/``sandbox_kernel`` (bubblewrap),
``limits`` (cgroups), ``tamper`` (the static scan), ``gradebook`` (merging into the course
gradebook), ``batch`` (``course grade``), ``samples`` and ``demo`` (``course demo``), after
grading ``outcomes`` (reading what grading left), ``failures`` (test-cell messages without hidden
tests), ``report`` (``course report``), ``similarity`` (``course similarity``) and ``htmlpage``,
``nbgrader_plugins`` (preprocessors wired in by nbgrader_config.py, among them the two-kernel
executor of the grading boundary, :mod:`hw_utils.boundary`).
"""
