"""One module per subcommand; each exposes `run(...) -> int` (an exit status).

Commands do not import each other: logic two commands share lives further down
(filters, transfer, worktree, git.scan).
"""
