"""Reading, checking and preprocessing calibration and evaluation images.

This module is on the device side: it needs only numpy, Pillow and the
standard library. The same code prepares the calibration set on the host and
the evaluation inputs on a device, so both see identical arrays.

Policies:

* **Which files.** A folder is read non-recursively; files whose suffix is one
  of ``IMAGE_EXTENSIONS`` (any case) are taken in file-name order, and hidden
  files (a leading dot, such as macOS ``._x.jpg``) are skipped. An explicit
  list is taken in the order given. ``limit`` keeps the first N.
* **Decoding.** Pillow must decode every pixel; a truncated or corrupt file
  is refused, never padded. Images above ``MAX_PIXELS`` (50 megapixels) are
  refused before decoding, and Pillow's own decompression-bomb check is turned
  into the same refusal. An EXIF orientation tag is applied first.
* **Pixel modes.** 8-bit grayscale ``L`` and ``RGB`` are read as they are.
  Safe conversions are done and logged at INFO: RGB to L (Pillow's ITU-R
  601-2 luma), L to RGB (the gray value copied to all three channels),
  bilevel ``1`` to L, and RGBA and LA, which are composited on black and then
  converted. Compositing (rather than dropping alpha) is chosen because the
  colour stored under a transparent pixel is arbitrary; on black, a
  transparent pixel becomes the low end of ``value_range`` and an opaque one
  keeps its colour. Refused with a hint: 16- and 32-bit modes (``I;16``,
  ``I``, ``F``), palette modes (``P``, ``PA``; their indices may be labels
  rather than light, so edgekit does not guess), CMYK, YCbCr, LAB and HSV,
  and multi-frame files.
* **Resize.** ``shorter-side-center-crop`` (the default) scales the image so
  it covers the target and cuts the centred target-sized window; it is done as
  one bilinear resample of the centred source region (sub-pixel exact) rather
  than a resize followed by a crop. ``stretch`` resizes the whole image to the
  target, changing its aspect ratio. The filter is Pillow's bilinear, which
  widens its support when shrinking, so downscaling does not alias. An image
  already at the target size is not resampled.
* **Values.** float32, NHWC, mapped linearly: pixel 0 to ``value_range[0]``
  and 255 to ``value_range[1]`` (the default (0, 1) divides by 255).
* **Set hash.** ``hash_files`` hashes file names and bytes, never folders, so
  a set copied elsewhere keeps its hash; see its docstring for the recipe.
"""

import hashlib
import logging
import os
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from edgekit.errors import ImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")

# Read at call time, so tests (and embedders) can lower it.
MAX_PIXELS = 50_000_000

RESIZE_POLICIES = ("shorter-side-center-crop", "stretch")
RESAMPLE_NAME = "bilinear"
_RESAMPLE = Image.Resampling.BILINEAR

_TARGET_MODES = {1: "L", 3: "RGB"}

_DEEP = "rescale it to 8 bits per channel first (e.g. magick {path} -depth 8 {out})"
_PALETTE = (
    "save it as grayscale or RGB first if its colours are light, not labels "
    "(e.g. magick {path} -type Grayscale {out})"
)
_COLOUR = "convert it to RGB first (e.g. magick {path} -colorspace sRGB {out})"

# Pixel mode -> (what it is, how to fix it).
_REFUSED_MODES = {
    "I;16": ("a 16-bit image", _DEEP),
    "I;16B": ("a 16-bit image", _DEEP),
    "I;16L": ("a 16-bit image", _DEEP),
    "I;16N": ("a 16-bit image", _DEEP),
    "I": ("a 32-bit integer image", _DEEP),
    "F": ("a 32-bit float image", _DEEP),
    "P": ("a palette image", _PALETTE),
    "PA": ("a palette image with alpha", _PALETTE),
    "CMYK": ("a CMYK image", _COLOUR),
    "YCbCr": ("a YCbCr image", _COLOUR),
    "LAB": ("a CIELAB image", _COLOUR),
    "HSV": ("an HSV image", _COLOUR),
}

# What Pillow raises, besides UnidentifiedImageError, for bytes it cannot
# decode; it is not one family.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error)


def _two_floats(value: Any) -> tuple[float, float]:
    try:
        low, high = (float(item) for item in value)
    except (TypeError, ValueError):
        raise ImageError(
            f"preprocessing value_range must be two numbers (low, high), got {value!r}"
        ) from None

    if not np.isfinite([low, high]).all() or low >= high:
        raise ImageError(
            f"preprocessing value_range must be finite with low < high, "
            f"got ({low}, {high})"
        )
    return low, high


@dataclass(frozen=True)
class Preprocessing:
    """How a file becomes a model input; recorded in the bundle manifest.

    Attributes:
        height: rows of the model input.
        width: columns of the model input.
        channels: 1 for grayscale (mode ``L``), 3 for RGB.
        value_range: what pixel values 0 and 255 map to.
        resize: ``"shorter-side-center-crop"`` or ``"stretch"``.
    """

    height: int = 256
    width: int = 256
    channels: int = 1
    value_range: tuple[float, float] = (0.0, 1.0)
    resize: str = "shorter-side-center-crop"

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ImageError(
                    f"preprocessing {name} must be a positive integer, got {value!r}"
                )

        if self.channels not in _TARGET_MODES:
            raise ImageError(
                f"preprocessing channels must be 1 (grayscale) or 3 (RGB), "
                f"got {self.channels!r}"
            )

        if self.resize not in RESIZE_POLICIES:
            raise ImageError(
                f"preprocessing resize must be one of {', '.join(RESIZE_POLICIES)}, "
                f"got {self.resize!r}"
            )

        # A JSON manifest gives a list; keep the tuple so the object stays
        # hashable and compares equal to one built in code.
        low, high = _two_floats(self.value_range)
        object.__setattr__(self, "value_range", (low, high))

    @property
    def color_mode(self) -> str:
        """The Pillow mode images are converted to: ``L`` or ``RGB``."""
        return _TARGET_MODES[self.channels]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe description, fixed parts (dtype, layout) included."""
        return {
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "color_mode": self.color_mode,
            "value_range": list(self.value_range),
            "resize": self.resize,
            "resample": RESAMPLE_NAME,
            "dtype": "float32",
            "layout": "NHWC",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild from ``to_dict`` output; absent keys take their defaults.

        Raises:
            ImageError: a key is unknown, or a fixed part (dtype, layout,
                resample, color mode) differs from what this module does.
        """
        fields = ("height", "width", "channels", "value_range", "resize")
        fixed = {"resample": RESAMPLE_NAME, "dtype": "float32", "layout": "NHWC"}

        unknown = sorted(set(data) - set(fields) - set(fixed) - {"color_mode"})
        if unknown:
            raise ImageError(
                f"preprocessing has unknown keys {', '.join(unknown)}; "
                f"known keys are {', '.join(fields + tuple(fixed) + ('color_mode',))}"
            )

        for key, value in fixed.items():
            if key in data and data[key] != value:
                raise ImageError(
                    f"preprocessing asks for {key} {data[key]!r}, but edgekit "
                    f"preprocesses with {key} {value!r} only"
                )

        prep = cls(**{key: data[key] for key in fields if key in data})
        if "color_mode" in data and data["color_mode"] != prep.color_mode:
            raise ImageError(
                f"preprocessing color_mode {data['color_mode']!r} does not match "
                f"channels {prep.channels} (expected {prep.color_mode!r})"
            )
        return prep


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Preprocessed images, the files they came from, and the set's hash.

    Attributes:
        arrays: (N, H, W, C) float32, already preprocessed.
        paths: the files, in the order of ``arrays``.
        sha256: ``hash_files(paths)``; the same on any machine.
    """

    arrays: np.ndarray
    paths: list[Path]
    sha256: str

    @property
    def count(self) -> int:
        """How many images the set holds."""
        return len(self.paths)


def list_images(source: Path | str | Sequence[Path | str]) -> list[Path]:
    """List the image files a folder, a file or an explicit list names.

    Args:
        source: a folder (its images, non-recursive, in name order), one image
            file, or a list of files (kept in the order given).

    Returns:
        The files, each checked to exist.

    Raises:
        ImageError: a path is missing or not a file, or there are no images.
    """
    if isinstance(source, str | os.PathLike):
        return _list_path(Path(source))

    paths = [Path(item) for item in source]
    if not paths:
        raise ImageError(
            "no image files were given",
            "pass a folder of images or at least one image file",
        )

    for path in paths:
        _require_file(path)
    return paths


def load_image(path: Path | str, prep: Preprocessing = Preprocessing()) -> np.ndarray:
    """Read one image file and preprocess it.

    Args:
        path: the image file.
        prep: the preprocessing to apply. Defaults to 256x256 grayscale in
            [0, 1].

    Returns:
        (H, W, C) float32.

    Raises:
        ImageError: the file is missing, unreadable, too large or in a pixel
            mode edgekit refuses; the message says how to fix it.
    """
    path = Path(path)
    _require_file(path)

    image = _decode(path)
    image = _convert_mode(image, prep.channels, path)
    image = _fit(image, prep)
    return _to_array(image, prep)


def load_images(
    source: Path | str | Sequence[Path | str],
    prep: Preprocessing = Preprocessing(),
    limit: int | None = None,
) -> ImageSet:
    """Read and preprocess a set of images.

    Args:
        source: as for ``list_images``.
        prep: the preprocessing to apply. Defaults to 256x256 grayscale in
            [0, 1].
        limit: keep only the first ``limit`` files. Defaults to all.

    Returns:
        The arrays, the files and the hash of exactly those files.

    Raises:
        ImageError: for the first file that cannot be used, or a bad limit.
    """
    paths = list_images(source)

    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ImageError(f"the image limit must be at least 1, got {limit!r}")
        paths = paths[:limit]

    # Filled in place so a large set does not briefly exist twice in memory.
    arrays = np.empty((len(paths), prep.height, prep.width, prep.channels), np.float32)
    for index, path in enumerate(paths):
        arrays[index] = load_image(path, prep)

    image_set = ImageSet(arrays=arrays, paths=paths, sha256=hash_files(paths))
    log.info("loaded %d images (sha256 %s)", image_set.count, image_set.sha256[:12])
    return image_set


def hash_files(paths: Sequence[Path | str]) -> str:
    """Hash a set of files by their names and bytes, not by where they are.

    The recipe: sort the files by (name, sha256 of bytes); for each, feed
    ``"<name>\\0<hex sha256 of bytes>\\n"`` (UTF-8) to one SHA-256; return its
    hex digest. Copying the folder, or listing the files in another order,
    keeps the hash; renaming or editing a file changes it.

    Args:
        paths: the files.

    Returns:
        64 hex characters.

    Raises:
        ImageError: a file is missing or cannot be read.
    """
    entries = sorted((Path(path).name, _file_sha256(Path(path))) for path in paths)

    digest = hashlib.sha256()
    for name, file_digest in entries:
        digest.update(f"{name}\0{file_digest}\n".encode())
    return digest.hexdigest()


def _list_path(path: Path) -> list[Path]:
    if path.is_file():
        return [path]

    if not path.is_dir():
        raise ImageError(
            f"{path} does not exist",
            "pass a folder of images or an image file",
        )

    images = sorted(
        (
            entry
            for entry in path.iterdir()
            if entry.suffix.lower() in IMAGE_EXTENSIONS
            and not entry.name.startswith(".")
            and entry.is_file()
        ),
        key=lambda entry: entry.name,
    )
    if not images:
        raise ImageError(
            f"{path} contains no images (looked for "
            f"{', '.join(IMAGE_EXTENSIONS)}; subfolders are not searched)",
            "put 8-bit grayscale or RGB photographs in it",
        )
    return images


def _require_file(path: Path) -> None:
    if path.is_file():
        return

    if path.is_dir():
        raise ImageError(
            f"{path} is a folder, not an image file",
            "pass a folder as the whole image source, or list the files in it",
        )
    raise ImageError(f"{path} does not exist", "check the path")


def _file_sha256(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError as error:
        raise ImageError(
            f"{path} cannot be read ({error.strerror or error})",
            "check that it exists and is readable",
        ) from None


def _decode(path: Path) -> Image.Image:
    """Open, check and fully decode one file; EXIF orientation applied."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_header(image, path)
                image.load()
                return _upright(image, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(path, None) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{path} is not an image Pillow can read",
            "remove it from the folder, or save it as PNG or JPEG",
        ) from None
    except PermissionError:
        raise ImageError(
            f"{path} cannot be read (permission denied)",
            "fix its permissions",
        ) from None
    except _DECODE_ERRORS as error:
        raise ImageError(
            f"{path} is truncated or corrupt (Pillow: {error})",
            "re-export or re-download it, or remove it from the set",
        ) from None


def _upright(image: Image.Image, path: Path) -> Image.Image:
    # Cameras store a rotated sensor image plus a tag; viewers apply the tag,
    # so the user expects the upright picture.
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation == 1:
        return image

    log.info("%s: applied EXIF orientation %s", path, orientation)
    return ImageOps.exif_transpose(image)


def _check_header(image: Image.Image, path: Path) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_large(path, (width, height))

    # Phone cameras write MPO: a JPEG whose first frame is the photograph and
    # whose later frames are previews or depth maps; the first frame is used.
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        raise ImageError(
            f"{path} has {frames} frames (an animation or a multi-page file)",
            "save the frame you want as an image of its own",
        )

    if image.mode in _REFUSED_MODES:
        what, fix = _REFUSED_MODES[image.mode]
        out = path.with_name(f"{path.stem}-8bit.png")
        raise ImageError(
            f"{path} is {what} (mode {image.mode}); edgekit reads 8-bit "
            f"grayscale or RGB",
            fix.format(path=path, out=out),
        )

    if image.mode not in ("L", "RGB", "RGBA", "LA", "1"):
        raise ImageError(
            f"{path} has pixel mode {image.mode}, which edgekit does not read",
            "save it as 8-bit grayscale or RGB PNG or JPEG",
        )


def _too_large(path: Path, size: tuple[int, int] | None) -> ImageError:
    limit = f"{MAX_PIXELS / 1e6:g}-megapixel"
    if size is None:
        pillow_limit = (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        what = (
            f"{path} declares a size above Pillow's decompression-bomb limit "
            f"({pillow_limit:.0f} megapixels)"
        )
    else:
        megapixels = size[0] * size[1] / 1e6
        what = (
            f"{path} is {size[0]}x{size[1]} ({megapixels:.1f} megapixels), above "
            f"the {limit} limit that guards against decompression bombs"
        )
    out = path.with_name(f"{path.stem}-small{path.suffix}")
    return ImageError(
        what, f"downscale it first (e.g. magick {path} -resize 4096x4096 {out})"
    )


def _convert_mode(image: Image.Image, channels: int, path: Path) -> Image.Image:
    """Bring an accepted mode to ``L`` or ``RGB``, logging what was done."""
    target = _TARGET_MODES[channels]
    original = image.mode
    if original == target:
        return image

    steps = []
    if original in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
        steps.append("composited on black")

    image = image.convert(target)
    steps.append(f"converted to {target}")
    log.info("%s: %s image %s", path, original, " and ".join(steps))
    return image


def _fit(image: Image.Image, prep: Preprocessing) -> Image.Image:
    """Resize to the target size by the preprocessing's policy."""
    size = (prep.width, prep.height)
    if image.size == size:
        return image

    if prep.resize == "stretch":
        return image.resize(size, _RESAMPLE)
    return image.resize(size, _RESAMPLE, box=_centre_box(image.size, size))


def _centre_box(
    source: tuple[int, int], target: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The centred source window with the target's aspect ratio."""
    scale = max(target[0] / source[0], target[1] / source[1])
    width, height = target[0] / scale, target[1] / scale

    left = (source[0] - width) / 2
    top = (source[1] - height) / 2
    return (left, top, left + width, top + height)


def _to_array(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.uint8).reshape(
        prep.height, prep.width, prep.channels
    )

    # Dividing by 255 first keeps the default (0, 1) exactly what the chapter
    # computes; scaling and shifting by 1 and 0 are then exact.
    low, high = prep.value_range
    values = pixels.astype(np.float32) / np.float32(255.0)
    return values * np.float32(high - low) + np.float32(low)
