"""Keeping stores tidy and honest: `fsck` (verify), `prune` (local) and `gc --remote`.

Owns: the logic of those three commands, returning reports; `commands/` prints them.
Must not: print, parse command lines, or import click.
"""
