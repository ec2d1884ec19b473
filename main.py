"""Start the CraftStudio GUI: `python main.py`."""

from craftstudio.app import main

if __name__ == "__main__":
    raise SystemExit(main())
