"""``python -m hw_utils`` is the ``course`` command."""

from hw_utils.cli import main

raise SystemExit(main())
