"""Frame folders: every PNG mode and bit depth reads as the uint8 RGB the pipeline scores, checked
against numpy arithmetic on the array written; hidden files are not frames; an odd file is named."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from conftest import real_frames
from PIL import Image

from infvsr_bench.errors import VideoReadError
from infvsr_bench.io import open_video

RNG = np.random.default_rng(7)
H, W = 6, 8


def _to8(x: np.ndarray) -> np.ndarray:
    """The documented rule for 16-bit samples: round(x * 255 / 65535), in float64 (independent of the reader)."""
    return np.round(x.astype(np.float64) * 255 / 65535).astype(np.uint8)


def _gray(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[..., None], 3, axis=-1)


def _mode_1(path):
    bits = RNG.integers(0, 2, (H, W)).astype(bool)
    Image.fromarray(bits).save(path)
    return _gray(bits.astype(np.uint8) * 255)


def _mode_l(path):
    g = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    Image.fromarray(g).save(path)
    return _gray(g)


def _mode_la(path):  # alpha dropped: the grey values as stored
    ga = RNG.integers(0, 256, (H, W, 2), dtype=np.uint8)
    Image.fromarray(ga, mode="LA").save(path)
    return _gray(ga[..., 0])


def _mode_p(path):
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    index = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    im = Image.fromarray(index, mode="P")
    im.putpalette(palette.ravel().tolist())
    im.save(path)
    return palette[index]


def _mode_rgb(path):
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def _mode_rgba(path):  # alpha dropped
    rgba = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(path)
    return rgba[..., :3]


def _mode_i16(path):
    g = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    Image.fromarray(g).save(path)
    assert Image.open(path).mode == "I;16"
    return _gray(_to8(g))


def _mode_i(path):  # 32-bit integer samples (PIL's mode for 16-bit grey in older versions): 16-bit range
    g = RNG.integers(0, 65536, (H, W)).astype(np.int32)
    Image.fromarray(g, mode="I").save(path)
    assert Image.open(path).mode == "I"
    return _gray(_to8(g))


def _png(path, samples: np.ndarray, color_type: int, bit_depth: int) -> None:
    """A PNG written by hand (no imaging library): rows of ``samples`` packed MSB first below 8 bits,
    big-endian at 16."""
    h, w = samples.shape[:2]
    if bit_depth < 8:
        per = 8 // bit_depth
        padded = np.zeros((h, -(-w // per) * per), np.uint8)
        padded[:, :w] = samples
        rows = sum(padded[:, k::per] << (8 - bit_depth * (k + 1)) for k in range(per)).astype(np.uint8)
    else:
        rows = samples.reshape(h, -1).astype(">u2" if bit_depth == 16 else np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def _grey_bits(bits):
    def write(path):  # 2- and 4-bit grey: PIL scales to 8 bits (x * 255 / (2**bits - 1), exact)
        g = RNG.integers(0, 2**bits, (H, W))
        _png(path, g, 0, bits)
        return _gray((g * 255 // (2**bits - 1)).astype(np.uint8))
    return write


def _la16(path):  # PIL opens 16-bit grey+alpha as 8-bit "RGBA"
    ga = RNG.integers(0, 65536, (H, W, 2))
    _png(path, ga, 4, 16)
    return _gray(_to8(ga[..., 0]))


def _rgb16(path):  # PIL opens this as 8-bit "RGB", silently dropping the low byte
    rgb = RNG.integers(0, 65536, (H, W, 3))
    _png(path, rgb, 2, 16)
    return _to8(rgb)


def _rgba16(path):
    rgba = RNG.integers(0, 65536, (H, W, 4))
    _png(path, rgba, 6, 16)
    return _to8(rgba[..., :3])


def _rgb16_tiff(path):
    rgb = RNG.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    cv2.imwrite(str(path), rgb[..., ::-1])
    return _to8(rgb)


MODES = {"1": (_mode_1, "png"), "L": (_mode_l, "png"), "LA": (_mode_la, "png"), "P": (_mode_p, "png"),
         "RGB": (_mode_rgb, "png"), "RGBA": (_mode_rgba, "png"), "I;16": (_mode_i16, "png"),
         "I": (_mode_i, "tif"), "RGB16": (_rgb16, "png"), "RGBA16": (_rgba16, "png"), "LA16": (_la16, "png"),
         "L2": (_grey_bits(2), "png"), "L4": (_grey_bits(4), "png"), "RGB16-tiff": (_rgb16_tiff, "tif"),
         "I;16-tiff": (_mode_i16, "tif")}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_and_bit_depth_reads_as_its_uint8_rgb(tmp_path, mode):
    write, suffix = MODES[mode]
    expected = np.stack([write(tmp_path / f"{i:03d}.{suffix}") for i in range(3)])
    reader = open_video(tmp_path)
    got = np.stack(list(reader.iter_frames()))
    assert got.dtype == np.uint8 and got.shape == (3, H, W, 3)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(reader.read_frames([2, 0]), expected[[2, 0]])


def test_16_bit_grey_frames_read_as_their_8_bit_originals(tmp_path):
    # The case: 16-bit grey GT was read as white (PSNR 80 dB). x * 257 is the exact 16-bit
    # form of an 8-bit value, so it must read back as that value.
    grey = real_frames(4)[..., 1]
    for i, g in enumerate(grey):
        Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / f"{i:05d}.png")
    np.testing.assert_array_equal(np.stack(list(open_video(tmp_path).iter_frames())), _gray(grey))


def test_floating_point_frames_are_refused_in_one_line(tmp_path):
    Image.fromarray(RNG.random((H, W)).astype(np.float32), mode="F").save(tmp_path / "0.tif")
    with pytest.raises(VideoReadError, match=r"0\.tif: floating-point samples \(mode F\)"):
        list(open_video(tmp_path).iter_frames())


def test_hidden_files_are_not_frames(tmp_path):
    frames = real_frames(3)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i:05d}.png")
    (tmp_path / "._00000.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS resource fork
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    reader = open_video(tmp_path)
    assert reader.num_frames == 3
    np.testing.assert_array_equal(np.stack(list(reader.iter_frames())), frames)
    # Any other dot name is data, never dropped in silence: one breaking the numbering is named.
    Image.fromarray(frames[0]).save(tmp_path / ".thumb.png")
    with pytest.raises(VideoReadError, match=r"\.thumb\.png does not follow the numbering"):
        open_video(tmp_path)


def test_a_file_breaking_the_numbering_is_named(tmp_path):
    for i, f in enumerate(real_frames(6)):
        Image.fromarray(f).save(tmp_path / f"{i:05d}.png")
    Image.fromarray(real_frames(1)[0]).save(tmp_path / "preview.jpg")
    with pytest.raises(VideoReadError, match=r"preview\.jpg does not follow the numbering of the other 6 frames "
                                             r"\(00000\.png\.\.\.\); remove it"):
        open_video(tmp_path)
