"""Make edgekit's calibration and held-out photographs from skimage.data.

Every image is a grayscale 256x256 JPEG cut from one of the photographs that
ship inside scikit-image (nothing is downloaded). Each output is a seeded
random crop of the source: a crop side between 40% and 100% of the largest
square that fits, an optional small rotation, an optional mirror, then a
Lanczos resize to 256x256.

The two sets are split by region: each photograph is cut in two along its
longer side, the calibration views come from the first 60% and the held-out
views from the remaining 40%, so no pixel of a held-out image was ever seen
in calibration, while both sets cover all fourteen scenes. (A split by whole
photograph leaves only a handful of scenes on the held-out side, and a verdict
split over four scenes moves in steps of a quarter.)

Run from the repository root; it rewrites calibration/images and
calibration/holdout and produces byte-identical files on every run with the
same Pillow and numpy:

    python calibration/make_calibration.py
"""

import argparse
import math
import zlib
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

SIZE = 256
JPEG_QUALITY = 90
SEED = 20260

# Source name -> file inside skimage/data. Only real photographs with a
# licence stated in skimage.data's docstrings; README.md says which and why.
SOURCES = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "chelsea": "chelsea.png",
    "clock": "clock_motion.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "hubble": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "retina": "retina.jpg",
    "rocket": "rocket.jpg",
    "text": "text.png",
}

# Which part of each photograph, as a fraction along its longer side, feeds
# each set, and how many views each photograph gives it.
REGIONS = {"images": (0.0, 0.6), "holdout": (0.6, 1.0)}
PER_SOURCE = {"images": 16, "holdout": 8}

MIN_CROP_FRACTION = 0.4
# Small sources (text is 172 px tall) would otherwise be blown up 4x or more.
MIN_CROP_PIXELS = 128
MAX_ROTATION_DEGREES = 8.0


def load_source(name: str) -> Image.Image:
    """Open one shipped photograph as 8-bit grayscale."""
    path = Path(skimage.data.__file__).parent / SOURCES[name]
    if not path.is_file():
        raise SystemExit(f"{path} is missing; reinstall scikit-image")

    with Image.open(path) as image:
        return image.convert("L")


def cut_region(image: Image.Image, region: tuple[float, float]) -> Image.Image:
    """Keep the given fraction of the photograph along its longer side."""
    width, height = image.size
    length = max(width, height)
    start, stop = round(region[0] * length), round(region[1] * length)
    if width >= height:
        return image.crop((start, 0, stop, height))
    return image.crop((0, start, width, stop))


def source_rng(name: str, folder: str) -> np.random.Generator:
    # A per-source, per-set stream keeps each source's crops unchanged when
    # another source is added or removed.
    return np.random.default_rng([SEED, zlib.crc32(f"{folder}/{name}".encode())])


def random_view(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Cut one rotated, scaled, maybe mirrored square view out of a photo."""
    width, height = image.size
    angle = float(rng.uniform(-1, 1) * MAX_ROTATION_DEGREES)
    if rng.random() < 0.5:
        angle = 0.0
    spread = abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle)))

    largest = min(width, height) / spread
    smallest = min(largest, max(MIN_CROP_FRACTION * largest, MIN_CROP_PIXELS))
    side = float(rng.uniform(smallest, largest))

    # Half the width of the rotated square's bounding box: the centre must
    # stay this far from every edge so no fill colour enters the view.
    reach = side * spread / 2
    cx = float(rng.uniform(reach, width - reach))
    cy = float(rng.uniform(reach, height - reach))

    left, top = math.floor(cx - reach), math.floor(cy - reach)
    region = image.crop((left, top, math.ceil(cx + reach), math.ceil(cy + reach)))
    centre = (cx - left, cy - top)
    if angle:
        region = region.rotate(angle, Image.Resampling.BICUBIC, center=centre)

    box = (
        centre[0] - side / 2,
        centre[1] - side / 2,
        centre[0] + side / 2,
        centre[1] + side / 2,
    )
    view = region.resize((SIZE, SIZE), Image.Resampling.LANCZOS, box=box)

    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return view


def make_set(folder: Path, region: tuple[float, float], per_source: int) -> int:
    """Write ``per_source`` views of each source's ``region`` into ``folder``.

    Files are named ``<index>_<source>.jpg`` with the sources taken in turn,
    so the first N files in name order span every source.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("[0-9][0-9][0-9]_*.jpg"):
        stale.unlink()

    streams = {
        name: (cut_region(load_source(name), region), source_rng(name, folder.name))
        for name in SOURCES
    }
    index = 0
    for _ in range(per_source):
        for name in SOURCES:
            photo, rng = streams[name]
            view = random_view(photo, rng)
            view.save(folder / f"{index:03d}_{name}.jpg", quality=JPEG_QUALITY)
            index += 1
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder that receives images/ and holdout/ (default: this folder)",
    )
    args = parser.parse_args()

    made, held = (
        make_set(args.out / folder, REGIONS[folder], PER_SOURCE[folder])
        for folder in ("images", "holdout")
    )
    print(f"wrote {made} calibration and {held} held-out images under {args.out}")


if __name__ == "__main__":
    main()
