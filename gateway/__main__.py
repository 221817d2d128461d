"""The `gateway` console script and `python -m gateway`: the command line of `gateway.cli`,
loaded so that a Ctrl-C while its modules load (a tenth of a second before any command's own
imports) is one line and the shell's code for it, 130, not a stack trace through the imports
(found by a review)."""

from __future__ import annotations

import sys

INTERRUPTED = "error: interrupted before the command started; nothing was done."


def main() -> None:
    """Console-script entry point."""
    try:
        from gateway import cli
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED + "\n")
        raise SystemExit(130) from None
    cli.main()


if __name__ == "__main__":
    main()
