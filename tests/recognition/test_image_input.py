"""load_image: every accepted input becomes uint8 RGB [H, W, 3]; bad input names itself."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from tfface.recognition.image_input import ImageInputError
from tfface.recognition.image_input import load_image


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def _encode(im, fmt, **kwargs):
    buffer = io.BytesIO()
    im.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_paths_bytes_pil_and_arrays_agree(astronaut, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(astronaut).save(path)
    for source in (str(path), path, path.read_bytes(), Image.fromarray(astronaut), astronaut):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(out, astronaut)


def test_grayscale_becomes_three_equal_channels():
    camera = skimage.data.camera()
    for source in (camera, camera[:, :, None], Image.fromarray(camera)):
        out = load_image(source)
        assert out.shape == camera.shape + (3,)
        np.testing.assert_array_equal(out[:, :, 0], camera)
        np.testing.assert_array_equal(out[:, :, 2], camera)


def test_cmyk_jpeg_decodes_to_the_same_picture(astronaut):
    cmyk = _encode(Image.fromarray(astronaut).convert("CMYK"), "JPEG", quality=95)
    out = load_image(cmyk)
    assert out.shape == astronaut.shape
    # PIL's naive RGB<->CMYK round trip is exact before JPEG; JPEG adds a small error.
    assert np.abs(out.astype(float) - astronaut).mean() < 6.0


def test_transparent_pixels_are_white(astronaut):
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 255, np.uint8)], -1)
    rgba[:10, :, 3] = 0  # a transparent band over (hidden) dark pixels
    rgba[:10, :, :3] = 0
    for source in (rgba, _encode(Image.fromarray(rgba, "RGBA"), "PNG")):
        out = load_image(source)
        assert out.shape == astronaut.shape
        assert np.all(out[:10] == 255)
        np.testing.assert_array_equal(out[10:], astronaut[10:])


def test_sixteen_bit_and_float_images():
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    out = load_image(_encode(Image.fromarray(ramp), "PNG"))
    np.testing.assert_array_equal(out[:, :, 0], np.arange(256).reshape(16, 16))
    np.testing.assert_array_equal(load_image(np.full((4, 4, 3), 1.0))[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(load_image(np.full((4, 4, 3), 128.0))[0, 0], [128] * 3)


# EXIF orientation (tag 0x0112): where the stored row 0 and column 0 are shown, as the
# pixels a viewer displays. np.rot90 turns counter-clockwise for k > 0.
_DISPLAYED = {
    1: lambda a: a,  # row 0 top, column 0 left
    2: lambda a: a[:, ::-1],  # row 0 top, column 0 right: mirrored left-right
    3: lambda a: a[::-1, ::-1],  # row 0 bottom, column 0 right: turned 180°
    4: lambda a: a[::-1],  # row 0 bottom, column 0 left: mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # row 0 left, column 0 top: transposed
    6: lambda a: np.rot90(a, -1),  # row 0 right, column 0 top: turned 90° clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # row 0 right, column 0 bottom
    8: lambda a: np.rot90(a, 1),  # row 0 left, column 0 bottom: turned 90° anticlockwise
}


@pytest.mark.parametrize("orientation", sorted(_DISPLAYED))
def test_exif_orientation_is_applied(astronaut, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    turned = orientation >= 5  # rows and columns swap
    # PNG keeps every pixel: a 5×7 pattern with no symmetry comes out exactly transformed.
    pattern = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = load_image(_encode(Image.fromarray(pattern), "PNG", exif=exif))
    assert out.shape == ((7, 5, 3) if turned else (5, 7, 3))
    np.testing.assert_array_equal(out, _DISPLAYED[orientation](pattern))
    # A camera JPEG: its stored pixels (decoded with the tag ignored), turned the same way.
    data = _encode(Image.fromarray(astronaut[:, :300]), "JPEG", exif=exif, quality=95)
    with Image.open(io.BytesIO(data)) as im:
        stored = np.asarray(im.convert("RGB"))
    out = load_image(data)
    assert out.shape == ((300, 512, 3) if turned else (512, 300, 3))
    np.testing.assert_array_equal(out, _DISPLAYED[orientation](stored))


@pytest.mark.parametrize(
    "source, match",
    [
        ("/no/such/photo.jpg", r"/no/such/photo.jpg: no such file"),
        (b"definitely not an image", r"<23 bytes>: cannot decode image"),
        (np.zeros((4, 4, 2), np.uint8), r"shape=\(4, 4, 2\).*arrays must be"),
        (np.full((4, 4), -3.0), r"must lie in \[0, 1\] or \[0, 255\]"),
        (np.full((4, 4), np.nan), r"finite"),
        (np.zeros((0, 4, 3), np.uint8), r"empty"),
        (42, r"<int>: images must be a path"),
    ],
)
def test_bad_inputs_name_themselves(source, match):
    with pytest.raises(ImageInputError, match=match):
        load_image(source)


def test_truncated_file_names_the_path(tmp_path, astronaut):
    path = tmp_path / "cut.jpg"
    path.write_bytes(_encode(Image.fromarray(astronaut), "JPEG")[:300])
    with pytest.raises(ImageInputError, match=f"{path}: cannot decode"):
        load_image(path)
