"""Browser tests: JupyterLab and nbgrader's formgrader driven in Debian's chromium.

A package (not a plain folder) so that its conftest.py does not shadow ``tests/conftest.py``,
which the other test modules import as ``conftest``.
"""
