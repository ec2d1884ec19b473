#!/usr/bin/env sh
# Add CraftStudio to the desktop's application menu for the current user.
# Usage: packaging/linux/install-desktop-entry.sh [PATH/TO/CraftStudio]
#   The executable defaults to dist/CraftStudio/CraftStudio beside this checkout.
# Installs the icon into the hicolor theme and the .desktop file under
# ${XDG_DATA_HOME:-~/.local/share}; run it again after moving the bundle.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
exe=${1:-$root/dist/CraftStudio/CraftStudio}
if [ ! -x "$exe" ]; then
    echo "install-desktop-entry.sh: $exe is not an executable; build it with python packaging/build.py --out dist, or pass its path." >&2
    exit 2
fi
exe=$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")
data=${XDG_DATA_HOME:-$HOME/.local/share}
for size in 16 24 32 48 64 128 256 512; do
    dir="$data/icons/hicolor/${size}x${size}/apps"
    mkdir -p "$dir"
    cp "$root/packaging/icons/craftstudio-$size.png" "$dir/craftstudio.png"
done
mkdir -p "$data/applications"
# Quote the path for the Exec key (spaces allowed), per the Desktop Entry specification.
sed "s|@EXEC@|\"$exe\"|" "$here/craftstudio.desktop" > "$data/applications/craftstudio.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
echo "Installed $data/applications/craftstudio.desktop for $exe"
