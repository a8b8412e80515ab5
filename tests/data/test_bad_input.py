import json

import numpy as np
import pytest

from tests.data import fixtures
from tfface.data.bad_input import BadInputError
from tfface.data.bad_input import BadInputReport
from tfface.data.bad_input import ImageCheckError
from tfface.data.bad_input import check_bytes
from tfface.data.bad_input import image_header
from tfface.data.bad_input import sniff_format


@pytest.mark.parametrize(
    "data, fmt",
    [
        (fixtures.jpeg(0), "jpeg"),
        (fixtures.png(0), "png"),
        (fixtures.encode(fixtures.rgb(0), "BMP"), "bmp"),
        (fixtures.encode(fixtures.rgb(0), "GIF"), "gif"),
        (b"not an image", None),
    ],
)
def test_sniff_format(data, fmt):
    assert sniff_format(data) == fmt


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF"])
def test_header_dimensions_match_pillow(fmt):
    data = fixtures.encode(fixtures.rgb(3, height=17, width=29), fmt)
    _, width, height, _ = image_header(data)
    assert (width, height) == (29, 17)


@pytest.mark.parametrize(
    "data, mode, note",
    [
        (fixtures.jpeg(1), "rgb", None),
        (fixtures.jpeg(1, mode="L"), "grayscale", "converted_grayscale"),
        (fixtures.jpeg(1, mode="CMYK"), "cmyk", "converted_cmyk"),
        (fixtures.png(1, mode="RGBA"), "rgba", "converted_rgba"),
        (fixtures.png(1, mode="LA"), "gray_alpha", "converted_gray_alpha"),
        (fixtures.png(1, mode="P"), "palette", "converted_palette"),
    ],
)
def test_colour_modes_are_kept_and_noted(data, mode, note):
    (_, _, _, found), notes = check_bytes(data, "x.png" if data[:4] == b"\x89PNG" else "x.jpg")
    assert found == mode
    assert notes == ([note] if note else [])


def test_png_named_jpg_is_an_extension_mismatch():
    info, notes = check_bytes(fixtures.png(2), "face.JPG")
    assert info[0] == "png"
    assert notes == ["extension_mismatch"]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty_file"),
        (fixtures.truncated_jpeg(0), "truncated"),
        (fixtures.png(0)[:-12], "truncated"),  # IEND chunk cut off
        (fixtures.jpeg(0)[:20], "truncated"),  # ends before SOF
        (b"GIF89a", "truncated"),
        (b"\x00\x01" * 40, "not_an_image"),
        (fixtures.huge_png(), "too_large"),
    ],
)
def test_header_check_reasons(data, reason):
    with pytest.raises(ImageCheckError) as info:
        check_bytes(data, "x")
    assert info.value.reason == reason


def test_max_pixels_is_configurable():
    data = fixtures.png(0, size=40)
    check_bytes(data, max_pixels=1600)
    with pytest.raises(ImageCheckError, match="1600 pixels > max_pixels=1599"):
        check_bytes(data, max_pixels=1599)


def test_jpeg_eoi_searched_in_tail_allows_trailing_bytes():
    info, _ = check_bytes(fixtures.jpeg(4) + b"\0" * 100)
    assert info[0] == "jpeg"


def test_report_counts_summary_and_json(tmp_path):
    report = BadInputReport("folder:/data")
    report.skip("/data/a/1.jpg", "truncated", "no JPEG end marker")
    report.skip("/data/a/2.jpg", "truncated")
    report.skip("/data/b", "empty_identity")
    report.note("/data/c/1.jpg", "converted_cmyk")
    report.ignore("/data/README.txt")
    assert report.counts == {"empty_identity": 1, "truncated": 2}
    assert report.note_counts == {"converted_cmyk": 1}
    assert report.num_skipped == 3
    summary = report.summary()
    assert "3 skipped" in summary and "truncated: 2" in summary and "converted_cmyk: 1" in summary
    loaded = json.loads(open(report.to_json(tmp_path / "r.json")).read())
    assert loaded["skipped_by_reason"] == {"empty_identity": 1, "truncated": 2}
    assert loaded["skipped"][0] == {
        "path": "/data/a/1.jpg",
        "reason": "truncated",
        "detail": "no JPEG end marker",
    }
    assert loaded["ignored_non_images"] == ["/data/README.txt"]


def test_fail_policy_raises_naming_file_and_reason():
    report = BadInputReport("x", on_bad_image="fail")
    with pytest.raises(BadInputError, match=r"/data/a/1.jpg.*truncated") as info:
        report.skip("/data/a/1.jpg", "truncated")
    assert info.value.path == "/data/a/1.jpg" and info.value.reason == "truncated"
    report.note("/data/a/2.jpg", "converted_grayscale")  # notes never fail
    assert report.note_counts == {"converted_grayscale": 1}


def test_invalid_arguments():
    with pytest.raises(ValueError, match="on_bad_image"):
        BadInputReport("x", on_bad_image="ignore")
    with pytest.raises(ValueError, match="Unknown skip reason"):
        BadInputReport("x").skip("p", "whatever")
    with pytest.raises(ValueError, match="Unknown note kind"):
        BadInputReport("x").note("p", "whatever")


def test_cmyk_jpeg_decodes_to_rgb_close_to_original():
    import tensorflow as tf

    image = fixtures.rgb(5, 32, 32)
    decoded = tf.io.decode_image(
        fixtures.encode(image, "JPEG", mode="CMYK", quality=95), channels=3
    ).numpy()
    assert decoded.shape == (32, 32, 3)
    assert np.abs(decoded.astype(int) - image).mean() < 8
