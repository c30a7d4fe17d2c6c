"""Everything that talks to git: the `git` CLI (plumbing.py) and pygit2 (repo.py)."""
