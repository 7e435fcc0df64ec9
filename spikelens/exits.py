"""The command line's contract in one place: its exit statuses (documented in the README) and the rule
that an existing output is never replaced without ``--overwrite``."""

from pathlib import Path

#: Bad input: a file, source, model or option that cannot be used; one line on stderr says why.
EXIT_BAD_INPUT = 2
#: Stopped by Ctrl-C or SIGTERM (the shell's 128 + SIGINT); ``live`` and ``record`` print their summary first.
EXIT_INTERRUPTED = 130


def refuse_existing(path: Path, overwrite: bool) -> None:
    """An existing output (a file, or a folder with anything in it) stays unless --overwrite is given."""
    p = Path(path)
    taken = p.is_file() or (p.is_dir() and any(p.iterdir()))
    if taken and not overwrite:
        raise ValueError(f"{p} exists: pass --overwrite to replace it")
