"""image_io: every odd input decodes to RGB uint8 or fails with one clear line; no metadata out."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from veilchain.anonymizer.image_io import encode_image, load_image, save_image
from veilchain.errors import ImageDecodeError, InputError


def _img(h=40, w=60, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gps_jpeg(path):
    img = Image.fromarray(_img())
    exif = img.getexif()
    exif[0x010F] = "VeilCam"  # Make
    exif[0x0112] = 1
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.5)
    gps[3], gps[4] = "E", (13.0, 24.0, 36.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img.save(path, "JPEG", exif=exif.tobytes(), icc_profile=icc, comment=b"secret comment")
    back = Image.open(path)
    assert back.getexif().get_ifd(0x8825)[1] == "N"  # the input really carries GPS
    assert back.info.get("icc_profile")


@pytest.mark.parametrize("suffix", ["png", "jpg", "webp", "tiff"])
def test_metadata_stripped(tmp_path, suffix):
    src = tmp_path / "gps.jpg"
    _gps_jpeg(src)
    arr = load_image(src)
    out = save_image(arr, tmp_path / f"out.{suffix}")
    with Image.open(out) as im:
        exif = im.getexif()  # TIFF lists its own structural tags here; nothing of the input
        assert 0x8825 not in exif and 0x010F not in exif and 0x8769 not in exif
        assert "icc_profile" not in im.info
        assert "exif" not in im.info
        assert "comment" not in im.info
        assert im.size == (60, 40)
    raw = out.read_bytes()
    for marker in (b"Exif", b"VeilCam", b"secret comment", b"GPS", b"tEXt", b"iCCP"):
        assert marker not in raw


def test_png_text_chunks_not_copied(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    src = tmp_path / "t.png"
    Image.fromarray(_img()).save(src, pnginfo=info)
    out = save_image(load_image(src), tmp_path / "o.png")
    assert b"Jane Doe" not in out.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o644


def test_png_roundtrip_is_lossless(tmp_path):
    a = _img()
    assert np.array_equal(load_image(save_image(a, tmp_path / "a.png")), a)
    assert np.array_equal(load_image(encode_image(a)), a)


def test_exif_orientation_applied(tmp_path):
    a = _img(20, 30)
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    p = tmp_path / "rot.png"
    img.save(p, exif=exif.tobytes())
    out = load_image(p)
    assert out.shape == (30, 20, 3)
    assert np.array_equal(out, np.rot90(a, k=-1))


def test_grey_rgba_palette(tmp_path):
    g = np.arange(200, dtype=np.uint8).reshape(10, 20)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (10, 20, 3) and np.array_equal(out[..., 1], g)

    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :10, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.shape == (10, 20, 3)
    assert (out[:, :10] == [255, 0, 0]).all() and (out[:, 10:] == 255).all()

    Image.fromarray(_img()).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").dtype == np.uint8


def test_16bit_grey_and_rgb(tmp_path):
    import cv2

    g16 = (np.arange(600, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    out = load_image(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    assert np.abs(out[..., 0].astype(int) - np.rint(g16 / 257)).max() <= 1

    c16 = np.zeros((20, 30, 3), np.uint16)
    c16[..., 2] = 65535  # BGR in OpenCV: red channel full
    c16[..., 1] = 32768
    cv2.imwrite(str(tmp_path / "c16.png"), c16)
    out = load_image(tmp_path / "c16.png")
    assert out.shape == (20, 30, 3)
    assert abs(int(out[0, 0, 0]) - 255) <= 1 and abs(int(out[0, 0, 1]) - 128) <= 1


def test_corrupt_truncated_jpeg(tmp_path):
    p = tmp_path / "broken.jpg"
    buf = io.BytesIO()
    Image.fromarray(_img(200, 200)).save(buf, "JPEG")
    p.write_bytes(buf.getvalue()[:600])
    with pytest.raises(ImageDecodeError) as err:
        load_image(p)
    assert "broken.jpg" in str(err.value) and "\n" not in str(err.value)


def test_non_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not an image")
    with pytest.raises(ImageDecodeError, match="notes.png: not an image"):
        load_image(p)
    with pytest.raises(ImageDecodeError, match="<bytes>"):
        load_image(b"\x00\x01garbage")


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def test_decompression_bomb(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(50_000, 50_000))
    with pytest.raises(ImageDecodeError, match="bomb.png: .*decompression bomb"):
        load_image(p)
    with pytest.raises(ImageDecodeError, match="over the 100 limit"):
        load_image(encode_image(_img()), max_pixels=100)


def test_missing_file_and_bad_arrays(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError):
        save_image(np.zeros((4, 4), np.uint8), tmp_path / "x.png")
    with pytest.raises(InputError, match="unsupported output format"):
        save_image(_img(), tmp_path / "x.xyz")
