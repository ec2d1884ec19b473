"""Entry point of the desktop bundle: no arguments opens the window, anything else is the CLI.

`CraftStudio` alone is what a double-click runs; `CraftStudio generate ...`, `library ...`,
`train ...` and `--version` reach the same commands as `python -m craftstudio`.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    # Spawned worker processes (parallel training) re-enter this executable.
    multiprocessing.freeze_support()
    from craftstudio.cli import main

    sys.exit(main(sys.argv[1:] or ["gui"]))
