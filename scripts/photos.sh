#!/usr/bin/env bash
# Real photographs for the wide-field model, installed from a package registry: the
# sample images that ship inside scikit-image's wheel on PyPI (public-domain or freely
# licensed photographs; scikit-image's documentation of `skimage.data` gives each one's
# source and licence). Only the wheel is fetched (no install, no dependencies); the
# photographs are copied out of it.
#
#   scripts/photos.sh [OUT]        (default OUT: data/photos)
#
# OUT/train/   photographs that training movies may be made from
# OUT/heldout/ photographs kept out of training: a face, a cat, a cup, a motorcycle and a
#              rocket, the held-out test of the wide-field model
# OUT/SOURCE   which wheel they came from
#
# The stereo partner of the held-out motorcycle (motorcycle_right) is left out of both
# sets: it shows the same scene. Synthetic images (chessboards, logos, colour wheels,
# line drawings) are left out too.
set -euo pipefail

OUT="${1:-data/photos}"
VERSION="0.26.0"
HELDOUT=(astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg)
TRAIN=(camera.png brick.png grass.png gravel.png coins.png moon.png page.png text.png
  hubble_deep_field.jpg retina.jpg ihc.png cell.png clock_motion.png)

if [ -f "$OUT/SOURCE" ] && grep -q "scikit-image $VERSION" "$OUT/SOURCE"; then
  echo "photographs already in $OUT ($(ls "$OUT/train" | wc -l) for training, $(ls "$OUT/heldout" | wc -l) held out)"
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "fetching the scikit-image $VERSION wheel from PyPI (photographs only, nothing installed)..."
if ! python3 -m pip download -q --no-deps --only-binary=:all: -d "$WORK" "scikit-image==$VERSION"; then
  echo "error: could not download scikit-image $VERSION from PyPI; check that pip can reach the package index" >&2
  exit 1
fi
WHEEL="$(ls "$WORK"/scikit_image-*.whl | head -n1)"
mkdir -p "$OUT.partial/train" "$OUT.partial/heldout"
python3 - "$WHEEL" "$OUT.partial" "${HELDOUT[*]}" "${TRAIN[*]}" <<'EOF'
import sys, zipfile
wheel, out, heldout, train = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for part, files in (("heldout", heldout), ("train", train)):
        for f in files:
            member = f"skimage/data/{f}"
            if member not in names:
                sys.exit(f"error: {member} is not in {wheel}; the list of photographs in scripts/photos.sh must follow the wheel")
            with open(f"{out}/{part}/{f}", "wb") as dst:
                dst.write(z.read(member))
EOF
echo "scikit-image $VERSION ($(basename "$WHEEL")), skimage/data/" > "$OUT.partial/SOURCE"
rm -rf "$OUT"
mv "$OUT.partial" "$OUT"
echo "photographs in $OUT: ${#TRAIN[@]} for training, ${#HELDOUT[@]} held out (${HELDOUT[*]})"
