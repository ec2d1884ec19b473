"""Build the CraftStudio desktop bundle: `python packaging/build.py --out DIR`.

Produces `DIR/CraftStudio/` with the executable `CraftStudio` (`CraftStudio.exe` on Windows;
`DIR/CraftStudio.app` too on macOS) from `packaging/craftstudio.spec`, using the torch that is
installed in the running Python: the CPU wheel gives a CPU bundle, a CUDA wheel a CUDA bundle.
Prints the bundle's size and the build time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "craftstudio.spec"


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def build(out: Path, work: Path | None = None) -> Path:
    """Run PyInstaller; returns the bundle folder. Raises CalledProcessError on failure."""
    out = out.resolve()
    work = (work or out / ".build").resolve()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(out), "--workpath", str(work), str(SPEC)], check=True, cwd=ROOT)
    return out / "CraftStudio"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to put CraftStudio/ in")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        bundle = build(args.out)
    except subprocess.CalledProcessError as exc:
        print(f"build.py: PyInstaller failed (exit {exc.returncode}); its messages are above.",
              file=sys.stderr)
        return 1
    print(f"Built {bundle} in {time.perf_counter() - started:.0f} s, "
          f"{folder_size(bundle) / 2**20:.0f} MB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
