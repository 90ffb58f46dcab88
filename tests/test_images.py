"""edgekit.images: the shipped calibration sets, preprocessing, refusals, hashing."""

import hashlib
import importlib.util
import io
import json
import logging
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekit import images
from edgekit.errors import ImageError
from edgekit.images import (
    Preprocessing,
    hash_files,
    list_images,
    load_image,
    load_images,
)

CALIBRATION = Path(__file__).resolve().parents[1] / "calibration"
NAME = re.compile(r"^(\d{3})_([a-z]+)\.jpg$")


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def noise(width: int, height: int, mode: str = "L") -> Image.Image:
    rng = np.random.default_rng(0)
    channels = len(mode)
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file whose header declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def refusal(path: Path, **kwargs) -> str:
    with pytest.raises(ImageError) as caught:
        load_images(path, **kwargs)
    return str(caught.value)


# The shipped calibration and held-out sets.


def load_calibration_script():
    spec = importlib.util.spec_from_file_location(
        "make_calibration", CALIBRATION / "make_calibration.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("folder", "minimum"), [("images", 200), ("holdout", 100)])
def test_calibration_sets_are_large_enough_and_256_grayscale(folder, minimum):
    paths = list_images(CALIBRATION / folder)

    assert len(paths) >= minimum
    for path in paths:
        assert NAME.match(path.name), path.name
        with Image.open(path) as image:
            assert (image.mode, image.size) == ("L", (256, 256)), path.name


def test_calibration_and_holdout_are_disjoint_and_cover_the_same_scenes():
    calibration = list_images(CALIBRATION / "images")
    holdout = list_images(CALIBRATION / "holdout")

    def digests(paths):
        return {hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}

    def sources(paths):
        return {NAME.match(path.name).group(2) for path in paths}

    # The split is by region of each photograph (see calibration/README.md):
    # no shared file, and every scene on both sides.
    assert not digests(calibration) & digests(holdout)
    assert sources(calibration) == sources(holdout)
    assert len(sources(holdout)) >= 10


def test_calibration_and_holdout_regions_never_overlap():
    script = load_calibration_script()

    for name in script.SOURCES:
        photo = script.load_source(name)
        calibration = script.cut_region(photo, script.REGIONS["images"])
        holdout = script.cut_region(photo, script.REGIONS["holdout"])
        axis = 0 if photo.width >= photo.height else 1

        # The two crops tile the longer side exactly, without overlap.
        tiled = calibration.size[axis] + holdout.size[axis]
        assert tiled == photo.size[axis], name
        assert calibration.size[1 - axis] == holdout.size[1 - axis], name


def test_first_files_in_name_order_span_every_source():
    paths = list_images(CALIBRATION / "images")
    every = {NAME.match(path.name).group(2) for path in paths}

    first = {NAME.match(path.name).group(2) for path in paths[: len(every)]}

    assert first == every


# Loading and preprocessing.


def test_load_images_gives_nhwc_float32_in_range():
    image_set = load_images(CALIBRATION / "holdout", limit=6)

    assert image_set.count == 6
    assert image_set.arrays.shape == (6, 256, 256, 1)
    assert image_set.arrays.dtype == np.float32
    assert 0.0 <= image_set.arrays.min() < image_set.arrays.max() <= 1.0
    assert [path.name for path in image_set.paths] == [
        path.name for path in list_images(CALIBRATION / "holdout")[:6]
    ]


def test_values_map_linearly_onto_value_range(tmp_path):
    pixels = np.array([[0, 51, 255, 128]], dtype=np.uint8)
    path = save(Image.fromarray(pixels, "L"), tmp_path / "ramp.png")

    unit = load_image(path, Preprocessing(height=1, width=4))
    signed = load_image(path, Preprocessing(height=1, width=4, value_range=(-1, 1)))

    # Exactly the chapter's division by 255, in float32.
    assert np.array_equal(unit[0, :, 0], pixels[0].astype(np.float32) / 255)
    assert unit[0, [0, 2], 0].tolist() == [0.0, 1.0]
    assert signed[0, [0, 2], 0].tolist() == [-1.0, 1.0]
    assert signed[0, :, 0] == pytest.approx([-1.0, -0.6, 1.0, 1 / 255], abs=1e-6)


def bars(width: int, height: int) -> Image.Image:
    """White in the centred square, black in the strips the crop must cut."""
    pixels = np.zeros((height, width), np.uint8)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    pixels[top : top + side, left : left + side] = 255
    return Image.fromarray(pixels, "L")


@pytest.mark.parametrize("size", [(512, 256), (256, 512), (1024, 512)])
def test_default_resize_scales_shorter_side_and_crops_centre(tmp_path, size):
    path = save(bars(*size), tmp_path / "bars.png")

    array = load_image(path)

    # When shrinking, the filter reaches one source pixel past the window,
    # exactly as a resize of the whole image would; inside, only white.
    assert array.shape == (256, 256, 1)
    assert array[1:-1, 1:-1].min() == 1.0
    assert array.min() > 0.8


@pytest.mark.parametrize("size", [(1024, 512), (512, 1024), (600, 400)])
def test_default_resize_matches_resize_then_crop(tmp_path, size):
    image = noise(*size)
    path = save(image, tmp_path / "noise.png")
    scale = 256 / min(size)
    scaled = image.resize(
        (round(size[0] * scale), round(size[1] * scale)), Image.Resampling.BILINEAR
    )
    left, top = (scaled.width - 256) // 2, (scaled.height - 256) // 2
    expected = np.asarray(scaled.crop((left, top, left + 256, top + 256)))

    array = load_image(path)

    # One resample of the window instead of two steps: at most 1 level apart.
    assert np.abs(array[..., 0] * 255 - expected).max() <= 1.0001


def test_stretch_resize_keeps_the_whole_frame(tmp_path):
    path = save(bars(512, 256), tmp_path / "bars.png")

    array = load_image(path, Preprocessing(resize="stretch"))

    assert array.shape == (256, 256, 1)
    assert array[:, 0, 0].max() == 0.0
    assert array[:, 128, 0].min() == 1.0


def test_non_square_target_crops_to_its_aspect_ratio(tmp_path):
    path = save(bars(400, 400), tmp_path / "square.png")

    array = load_image(path, Preprocessing(height=100, width=200))

    assert array.shape == (100, 200, 1)
    assert array.min() == 1.0


def test_rgb_becomes_luma_and_is_logged(tmp_path, caplog):
    path = save(Image.new("RGB", (256, 256), (200, 100, 50)), tmp_path / "c.png")

    with caplog.at_level(logging.INFO, logger="edgekit.images"):
        array = load_image(path)

    # ITU-R 601-2: (200 * 299 + 100 * 587 + 50 * 114) / 1000 = 124.2
    assert np.all(array == np.float32(124) / 255)
    assert "RGB image converted to L" in caplog.text


def test_grayscale_becomes_rgb_when_three_channels_are_asked(tmp_path):
    path = save(Image.new("L", (256, 256), 77), tmp_path / "g.png")

    array = load_image(path, Preprocessing(channels=3))

    assert array.shape == (256, 256, 3)
    assert np.all(array == np.float32(77) / 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_black(tmp_path, caplog, mode):
    colour = (124, 124, 124) if mode == "RGBA" else (124,)
    image = Image.new(mode, (256, 256), (*colour, 255))
    image.paste(Image.new(mode, (128, 256), (*colour, 0)), (0, 0))
    path = save(image, tmp_path / "alpha.png")

    with caplog.at_level(logging.INFO, logger="edgekit.images"):
        array = load_image(path)

    assert np.all(array[:, :128] == 0.0)
    assert np.all(array[:, 128:] == np.float32(124) / 255)
    assert f"{mode} image composited on black and converted to L" in caplog.text


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((16, 32), np.uint8)
    pixels[:, 16:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: left goes to top
    path = save(Image.fromarray(pixels, "L"), tmp_path / "turned.png", exif=exif)

    array = load_image(path, Preprocessing(height=32, width=16))

    assert array[:16].max() == 0.0
    assert array[16:].min() == 1.0


def test_phone_mpo_photo_uses_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (64, 64), value) for value in ((90,) * 3, (0,) * 3)]
    path = tmp_path / "phone.jpg"
    frames[0].save(path, "MPO", save_all=True, append_images=frames[1:])

    array = load_image(path, Preprocessing(height=64, width=64))

    assert np.abs(array * 255 - 90).max() <= 2


def test_explicit_list_keeps_its_order_and_a_file_is_a_set_of_one(tmp_path):
    first = save(Image.new("L", (8, 8), 10), tmp_path / "b.png")
    second = save(Image.new("L", (8, 8), 20), tmp_path / "a.png")

    assert list_images([first, second]) == [first, second]
    assert list_images(first) == [first]
    assert list_images(tmp_path) == [second, first]


def test_folder_listing_skips_hidden_and_non_image_files(tmp_path):
    keep = save(Image.new("L", (8, 8)), tmp_path / "x.JPG")
    save(Image.new("L", (8, 8)), tmp_path / "._x.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    save(Image.new("L", (8, 8)), tmp_path / "sub" / "y.png")

    assert list_images(tmp_path) == [keep]


# Refusals: each one line, naming the file and the fix.


def test_missing_folder_is_refused(tmp_path):
    message = refusal(tmp_path / "nowhere")

    assert message.startswith(f"{tmp_path / 'nowhere'} does not exist;")


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "README.md").write_text("no images here")

    message = refusal(tmp_path)

    assert f"{tmp_path} contains no images" in message
    assert "subfolders are not searched" in message


def test_empty_list_and_folder_as_file_are_refused(tmp_path):
    with pytest.raises(ImageError, match="no image files were given"):
        list_images([])

    with pytest.raises(ImageError, match="is a folder, not an image file"):
        load_image(tmp_path)


def test_non_image_file_is_refused(tmp_path):
    (tmp_path / "fake.png").write_text("this is text, not a PNG")

    message = refusal(tmp_path)

    assert message == (
        f"{tmp_path / 'fake.png'} is not an image Pillow can read; "
        "remove it from the folder, or save it as PNG or JPEG"
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_refused(tmp_path, fmt):
    buffer = io.BytesIO()
    noise(64, 64).save(buffer, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])

    message = refusal(tmp_path)

    assert message.startswith(f"{path} is truncated or corrupt (Pillow: ")
    assert message.endswith("re-export or re-download it, or remove it from the set")


def test_corrupt_pixel_data_is_refused(tmp_path):
    buffer = io.BytesIO()
    noise(64, 64).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[100:140] = bytes(40)
    (tmp_path / "broken.png").write_bytes(bytes(data))

    message = refusal(tmp_path)

    assert "broken.png is truncated or corrupt" in message


@pytest.mark.parametrize(
    ("mode", "suffix", "what"),
    [
        ("I;16", "png", "is a 16-bit image (mode I;16)"),
        ("I", "tif", "is a 32-bit integer image (mode I)"),
        ("F", "tif", "is a 32-bit float image (mode F)"),
    ],
)
def test_deep_images_are_refused(tmp_path, mode, suffix, what):
    path = save(Image.new(mode, (16, 16)), tmp_path / f"deep.{suffix}")

    message = refusal(tmp_path)

    assert message.startswith(f"{path} {what}; edgekit reads 8-bit grayscale or RGB;")
    assert f"magick {path} -depth 8" in message


def test_palette_image_is_refused_with_a_hint(tmp_path):
    path = save(noise(16, 16).convert("P"), tmp_path / "indexed.png")

    message = refusal(tmp_path)

    assert f"{path} is a palette image (mode P)" in message
    assert "-type Grayscale" in message


def test_cmyk_image_is_refused(tmp_path):
    path = save(Image.new("CMYK", (16, 16)), tmp_path / "print.jpg")

    message = refusal(tmp_path)

    assert f"{path} is a CMYK image (mode CMYK)" in message
    assert "-colorspace sRGB" in message


def test_multi_frame_file_is_refused(tmp_path):
    frames = [Image.new("L", (16, 16), value) for value in (0, 255)]
    path = tmp_path / "pages.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])

    message = refusal(tmp_path)

    assert message.startswith(f"{path} has 2 frames")


def test_image_above_the_pixel_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    path = save(Image.new("L", (40, 30)), tmp_path / "big.png")

    message = refusal(tmp_path)

    assert message.startswith(f"{path} is 40x30 (0.0 megapixels), above the ")
    assert "decompression bombs; downscale it first" in message


def test_small_file_declaring_huge_dimensions_is_refused_unread(tmp_path):
    (tmp_path / "a.png").write_bytes(png_header_only(10_000, 6_000))
    (tmp_path / "b.png").write_bytes(png_header_only(100_000, 100_000))

    with pytest.raises(ImageError) as first:
        load_image(tmp_path / "a.png")
    with pytest.raises(ImageError) as second:
        load_image(tmp_path / "b.png")

    assert "a.png is 10000x6000 (60.0 megapixels), above the 50-megapixel" in str(
        first.value
    )
    assert "b.png declares a size above Pillow's decompression-bomb limit" in str(
        second.value
    )


def test_errors_are_one_line_with_the_cli_exit_code(tmp_path):
    (tmp_path / "fake.jpg").write_bytes(b"\xff\xd8 not really")

    with pytest.raises(ImageError) as caught:
        load_images(tmp_path)

    assert caught.value.exit_code == 2
    assert "\n" not in caught.value.one_line()


def test_bad_limit_is_refused():
    with pytest.raises(ImageError, match="the image limit must be at least 1, got 0"):
        load_images(CALIBRATION / "holdout", limit=0)


# Preprocessing description.


def test_preprocessing_round_trips_through_json():
    prep = Preprocessing(height=128, width=64, channels=3, value_range=(-1, 1))

    data = json.loads(json.dumps(prep.to_dict()))

    assert data["dtype"] == "float32"
    assert data["layout"] == "NHWC"
    assert data["resample"] == "bilinear"
    assert Preprocessing.from_dict(data) == prep
    assert Preprocessing.from_dict({}) == Preprocessing()


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"channels": 2}, "channels must be 1 (grayscale) or 3 (RGB), got 2"),
        ({"resize": "squash"}, "resize must be one of shorter-side-center-crop"),
        ({"value_range": [1, 0]}, "value_range must be finite with low < high"),
        ({"height": 0}, "height must be a positive integer, got 0"),
        ({"dtype": "float16"}, "edgekit preprocesses with dtype 'float32' only"),
        ({"channels": 3, "color_mode": "L"}, "color_mode 'L' does not match"),
        ({"mean": 0.5}, "preprocessing has unknown keys mean"),
    ],
)
def test_bad_preprocessing_is_refused(data, text):
    with pytest.raises(ImageError, match=re.escape(text)):
        Preprocessing.from_dict(data)


# The set hash.


def test_hash_ignores_folder_location_and_order(tmp_path):
    source = CALIBRATION / "holdout"
    copy = shutil.copytree(source, tmp_path / "elsewhere")

    here = load_images(source, limit=5)
    there = load_images(copy, limit=5)

    assert here.sha256 == there.sha256
    assert hash_files(list(reversed(here.paths))) == here.sha256


def test_hash_follows_the_documented_recipe(tmp_path):
    a = save(Image.new("L", (8, 8), 1), tmp_path / "a.png")
    b = save(Image.new("L", (8, 8), 2), tmp_path / "b.png")

    lines = "".join(
        f"{path.name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n"
        for path in (a, b)
    )

    assert hash_files([b, a]) == hashlib.sha256(lines.encode()).hexdigest()


def test_hash_changes_with_a_byte_or_a_name(tmp_path):
    path = save(Image.new("L", (8, 8), 1), tmp_path / "a.png")
    before = hash_files([path])

    renamed = path.rename(tmp_path / "z.png")
    after_rename = hash_files([renamed])
    renamed.write_bytes(renamed.read_bytes() + b"\0")

    assert after_rename != before
    assert hash_files([renamed]) not in (before, after_rename)


def test_images_module_does_not_import_tensorflow():
    code = (
        "import sys, edgekit.images\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
