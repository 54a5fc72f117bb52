"""Stand-in for mediapy.write_video at its defaults as SeedVR2 calls it: H.264 yuv420p, qp 28 above 640x480."""

from standin import write_video as _write


def write_video(path, images, fps=60, **_options):
    frames = list(images)
    h, w = frames[0].shape[:2]
    _write(path, frames, fps, "yuv420p", qp=28 if h * w > 640 * 480 else 20)
