"""`python -m gitmlx ...` is `git-mlx ...`."""

from gitmlx.cli import main

raise SystemExit(main())
