"""Any external VSR tool run as a subprocess on a whole clip (FlashVSR, SeedVR2, STAR, ...).

External tools need the whole clip at once, so the adapter streams the LR frames to disk as they
arrive (never holding the clip in memory), runs the command in ``flush()``, then streams the tool's
output back from disk chunk by chunk after checking its frame count and size. Per clip it keeps a
work folder ``<work_dir>/<folder>/`` (``folder``: the clip's folder name in the run folder,
``results.clip_folder_name``, so ``..`` or ``a b`` / ``a_b`` never share or escape it) holding
``tool.log`` (the command line, then the tool's stdout and stderr) and ``tool_stats.json`` (exit code,
wall time, peak GPU memory, output codec). Without ``work_dir`` the work folder is a temporary one,
removed when the run ends (``close``).

The command is a template (a shell string, or a list of arguments run without a shell) with
placeholders, each substituted shell-quoted (write ``{lr_dir}``, not ``"{lr_dir}"``; a literal
brace is ``{{`` / ``}}``):

  {lr_dir}     folder of this clip's LR frames (input_format png), named by ``frame_name``
  {lr_video}   this clip's LR video (input_format ffv1 -> .mkv, x264rgb -> .mp4), lossless RGB
  {lr_root}    the folder holding only {lr_dir} or {lr_video} (for tools that take a folder of clips)
  {out_dir}    an empty folder the tool must write its output into (frames or one video)
  {clip} {scale} {num_frames} {height} {width} {out_height} {out_width} {fps}  (sizes as the tool gets them)
  {device}     the ``device`` option verbatim (e.g. cuda:0); {gpu_index}: the physical GPU it names
               (cuda:1 under an inherited CUDA_VISIBLE_DEVICES=2,3 is "3"), also the GPU watched
  {python}     the ``python`` option (default: this interpreter); {work_dir}: the clip's folder
  {repo} {weights_dir}  the options of those names (the tool's clone, its weights)
  {wrappers}   our folder of wrapper scripts for tools without a usable CLI (methods/wrappers)

``cwd`` may use {repo} {weights_dir} {wrappers} {python}. ``required`` names the options a tool
config cannot know (its clone, its venv's python): unset, they stop the run in one line.

Frame-count rules: the LR clip is padded by repeating its last frame to ``frames_offset`` (mod
``frames_multiple``), at least ``frames_min`` frames and ``frames_pad_min`` more than the clip, and
the output trimmed back (FlashVSR: 8n+5, >= 21). Size rules: the LR is padded (edge pixels repeated,
right and bottom) to multiples of ``size_multiple`` and at least ``size_min`` pixels, and the output
cropped back to x``scale`` of the clip. Anything else comes back as a failed clip saying what the
tool wrote and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from infvsr_bench.contracts import ClipInfo, Method
from infvsr_bench.errors import ClipError, ConfigError, VideoReadError
from infvsr_bench.io.readers import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    VideoReader,
    open_video,
)
from infvsr_bench.io.writers import FrameWriter, LosslessVideoWriter
from infvsr_bench.results.store import clip_folder_name
from infvsr_bench.weights import WeightsKind
from methods.chunk_layout import ChunkRule
from methods.configs import INPUT_FORMATS, CommandConfig

log = logging.getLogger("infvsr_bench")

PLACEHOLDERS = (
    "lr_dir", "lr_video", "lr_root", "out_dir", "clip", "scale", "num_frames", "height", "width",
    "out_height", "out_width", "fps", "device", "gpu_index", "python", "work_dir", "repo", "weights_dir",
    "wrappers",
)
CWD_PLACEHOLDERS = ("repo", "weights_dir", "wrappers", "python")
WRAPPERS = Path(__file__).resolve().parent / "wrappers"
# Codecs and frame formats that store RGB exactly; anything else (H.264/HEVC, YUV, JPEG) counts as lossy.
LOSSLESS_CODECS = {"ffv1", "png", "rawvideo", "huffyuv", "ffvhuff", "utvideo", "qtrle"}
LOSSLESS_FRAMES = {".png", ".bmp", ".tif", ".tiff"}


def padded_length(n: int, multiple: int, offset: int, pad_min: int = 0, minimum: int = 0) -> int:
    """The smallest L >= max(n + pad_min, minimum) with L = offset (mod multiple); 17 -> 17, 18 -> 25 for 8n+1."""
    low = max(n + pad_min, minimum)
    return low + (offset - low) % multiple


def padded_size(size: int, multiple: int, minimum: int = 0) -> int:
    """The smallest multiple of ``multiple`` >= max(size, minimum): 30 -> 32 for 8."""
    low = max(size, minimum)
    return -(-low // multiple) * multiple


def physical_gpu(device: str, environ: dict[str, str]) -> tuple[str, list[str] | None]:
    """The GPU a tool's ``device`` names as this process sees it ({gpu_index}), and the GPUs to watch.

    cuda:i (cuda = cuda:0) is the i-th entry of an inherited CUDA_VISIBLE_DEVICES (an index or a
    UUID), as CUDA numbers them; without it, GPU i. A device that names no GPU (cpu) watches none ([]).
    """
    visible = [v.strip() for v in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    m = re.fullmatch(r"(?:(?:cuda|gpu):?)?(\d*)", device.strip())
    if m is None:
        return (visible[0] if visible else "0"), []
    i = int(m.group(1) or 0)
    if not visible:
        return str(i), [str(i)]
    if i >= len(visible):
        raise ConfigError(f"method 'command': device {device} is not among the {len(visible)} GPU(s) of the "
                          f"inherited CUDA_VISIBLE_DEVICES={environ['CUDA_VISIBLE_DEVICES']}")
    return visible[i], [visible[i]]


def output_codec(path: Path, reader: VideoReader) -> tuple[str, bool]:
    """What the tool's output is stored as ("png", "h264 yuv420p", ...) and whether that is lossy for RGB."""
    if path.is_dir():
        suffixes = sorted({f.suffix.lower() for f in getattr(reader, "files", [])})
        return " ".join(s.lstrip(".") for s in suffixes), not set(suffixes) <= LOSSLESS_FRAMES
    codec, pix_fmt = getattr(reader, "codec", "?"), getattr(reader, "pix_fmt", "?")
    return f"{codec} {pix_fmt}", codec not in LOSSLESS_CODECS


class GpuMemoryMonitor:
    """Peak of nvidia-smi's ``memory.used`` (MiB, summed over the watched GPUs) while a tool runs.

    GPUs are named by nvidia-smi index or UUID (None = all, [] = none). It measures the whole GPU,
    other processes included: ``baseline_mib`` (before the tool starts) is recorded beside
    ``peak_mib`` so the difference can be read. Without nvidia-smi both are None.
    """

    def __init__(self, indices: list[str] | None, interval: float) -> None:
        self.exe = shutil.which("nvidia-smi") if indices != [] else None
        self.indices = indices
        self.interval = interval
        self.baseline_mib: float | None = None
        self.peak_mib: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def query(self) -> float | None:
        args = [self.exe, "--query-gpu=index,uuid,memory.used", "--format=csv,noheader,nounits"]
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        used = []
        for line in out.strip().splitlines():
            *names, memory = [p.strip() for p in line.split(",")]
            if names and (self.indices is None or set(names) & set(self.indices)):
                try:
                    used.append(float(memory))
                except ValueError:
                    continue
        return sum(used) if used else None

    def _poll(self) -> None:
        while not self._stop.is_set():
            value = self.query()
            if value is not None:
                self.peak_mib = value if self.peak_mib is None else max(self.peak_mib, value)
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuMemoryMonitor:
        if self.exe:
            self.baseline_mib = self.query()
            self._thread = threading.Thread(target=self._poll, name="nvidia-smi-poll", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=15)


class _PngFramesWriter(FrameWriter):
    """LR frames as PNGs named by the tool's pattern, written in place (the folder is the tool's)."""

    def __init__(self, path: Path, name: str, start: int) -> None:
        self.path = self.tmp = path
        self.frames_written = 0
        self.name, self.start = name, start
        path.mkdir(parents=True, exist_ok=True)

    def _write_frame(self, frame: np.ndarray) -> None:
        file = self.path / self.name.format(index=self.start + self.frames_written)
        Image.fromarray(frame).save(file, compress_level=1)

    def _finish(self) -> None:
        pass

    def close(self) -> None:
        pass

    def record(self) -> dict[str, Any]:
        return {"format": "png", "codec": "png", "pix_fmt": "rgb24", "lossless": True}


def _fields(template: str) -> set[str]:
    """The placeholder names in a template; ConfigError for a malformed one."""
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"method 'command': bad template {template!r}: {exc}") from None


def _interpreter(python: str, title: str) -> str:
    """The ``python`` option as a runnable path (this interpreter when unset); ConfigError when it is not one."""
    if not python:
        return sys.executable
    found = shutil.which(str(Path(python).expanduser()))
    if found is None:
        raise ConfigError(f"{title}: method.python={python} is not an executable")
    return found


class Command(Method):
    """Runs an external VSR command once per clip; LR in and SR out go through disk."""

    name = "command"
    Config = CommandConfig
    causal = False
    weights = WeightsKind.EXTERNAL

    def __init__(self, config: CommandConfig) -> None:
        # This process only moves frames: the runner's device is the CPU; {device} is the tool's.
        super().__init__(dataclasses.replace(config, device="cpu"))
        self.config = config
        if isinstance(config.command, str):
            self.template: str | list[str] = config.command.strip()
        elif isinstance(config.command, (list, tuple)) and config.command:
            self.template = [str(a) for a in config.command]
        else:
            self.template = ""
        if not self.template:
            raise ConfigError("method 'command' needs method.command=<command template>")
        self.title = f"method {config.label or 'command'!r}"
        for key, what in (config.required or {}).items():
            if not str(getattr(config, key) or "").strip():
                raise ConfigError(f"{self.title} needs method.{key}=<{what}> (unset)")
        parts = [self.template] if isinstance(self.template, str) else self.template
        parts = parts + [str(v) for v in (config.env or {}).values()]
        for part, allowed in [(p, PLACEHOLDERS) for p in parts] + [(config.cwd, CWD_PLACEHOLDERS)]:
            fields = _fields(part)
            bad = sorted(f for f in fields if f not in allowed)
            if bad:
                raise ConfigError(f"method 'command': unknown placeholder(s) {bad}; valid: {list(allowed)}")
            wrong = "lr_video" if config.input_format == "png" else "lr_dir"
            if wrong in fields:
                raise ConfigError(
                    f"method 'command': {{{wrong}}} does not exist with input_format={config.input_format}"
                )
        self.static = {
            "repo": str(Path(config.repo).expanduser()) if config.repo else "",
            "weights_dir": str(Path(config.weights_dir).expanduser()) if config.weights_dir else "",
            "wrappers": str(WRAPPERS),
            "python": _interpreter(config.python, self.title),
        }
        if config.repo and not Path(self.static["repo"]).is_dir():
            raise ConfigError(f"{self.title}: method.repo={config.repo} is not a folder")
        self.cwd = config.cwd.format(**self.static) if config.cwd else ""
        if self.cwd and not Path(self.cwd).expanduser().is_dir():
            raise ConfigError(f"{self.title}: cwd {self.cwd} is not a folder")
        self.gpu_index, self.watch = physical_gpu(config.device, dict(os.environ))
        self.own_work_root = not config.work_dir  # ours to remove whole in close()
        if config.work_dir:
            self.work_root = Path(config.work_dir).expanduser().resolve()
            self.work_root.mkdir(parents=True, exist_ok=True)
        else:
            self.work_root = Path(tempfile.mkdtemp(prefix="infvsr_command_")).resolve()
        self.last_clip_stats: dict[str, Any] = {}
        self._writer: FrameWriter | None = None
        self.chunk_rule = ChunkRule.parse(config.chunk_layout)

    def num_parameters(self) -> int | None:
        return None

    def info(self) -> dict[str, Any]:
        info = super().info()
        info.update({"device": self.config.device, "dtype": None, "label": self.config.label or None,
                     "work_dir": str(self.work_root)})
        return info

    def clip_record(self) -> dict[str, Any]:
        """Per-clip facts of the last clip (tool_seconds, tool_peak_gpu_mib, ...) for the results row."""
        return dict(self.last_clip_stats)

    def chunk_layout(self) -> list[int] | None:
        """The declared ``chunk_layout`` over the clip's frames; None (not applicable) when undeclared,
        [] for chunks of one frame ({every: 1}: a tool working frame by frame has no seams)."""
        if self.chunk_rule is None:
            return None
        if self.chunk_rule.every == 1 and self.chunk_rule.first in (None, 1):
            return []
        return self.chunk_rule.chunk_starts(self.clip.num_frames)

    # -- streaming in ---------------------------------------------------------------------------

    def reset(self, clip: ClipInfo) -> None:
        super().reset(clip)
        self._close_writer(abort=True)
        clip_dir = self.work_root / clip_folder_name(clip.name)
        if clip_dir.resolve().parent != self.work_root:  # a link put there: never follow it to delete
            raise ClipError(f"clip {clip.name!r}: its work folder {clip_dir} resolves to {clip_dir.resolve()}, "
                            f"outside {self.work_root}; remove that link")
        self.clip_dir = clip_dir
        self.input_root = self.clip_dir / "input"
        self.out_dir = self.clip_dir / "output"
        self.log_path = self.clip_dir / "tool.log"
        for folder in (self.input_root, self.out_dir):
            if folder.exists():
                shutil.rmtree(folder)
        self.out_dir.mkdir(parents=True)
        self.input_root.mkdir(parents=True)
        self.last_clip_stats = {}
        suffix = INPUT_FORMATS[self.config.input_format]
        # ASCII without dots: tools tell a frame folder from a video by its suffix (RealBasicVSR).
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", clip.name) or "clip"
        self.lr_path = self.input_root / f"{stem}{suffix}"
        self._frames_in = 0
        self._last: np.ndarray | None = None
        self._lr_hw: tuple[int, int] = (clip.lr_height, clip.lr_width)

    def _open_writer(self) -> FrameWriter:
        if self._writer is None:
            if self.config.input_format == "png":
                self._writer = _PngFramesWriter(self.lr_path, self.config.frame_name, self.config.frame_start)
            else:
                self._writer = LosslessVideoWriter(self.lr_path, fps=self.clip.fps, codec=self.config.input_format)
        return self._writer

    def _close_writer(self, abort: bool = False) -> None:
        if self._writer is not None:
            self._writer.abort() if abort else self._writer.close()
            self._writer = None

    def process(self, lr: np.ndarray) -> None:
        """Buffer LR frames on disk; all SR frames come from ``flush``."""
        if len(lr) == 0:
            return
        self._lr_hw = tuple(lr.shape[1:3])  # type: ignore[assignment]
        th, tw = self.tool_size()
        if (th, tw) != self._lr_hw:  # the tool's size rule: repeat the edge pixels right and bottom
            lr = np.pad(lr, ((0, 0), (0, th - lr.shape[1]), (0, tw - lr.shape[2]), (0, 0)), mode="edge")
        self._open_writer().write(lr)
        self._frames_in += len(lr)
        self._last = lr[-1].copy()
        return

    # -- the tool -------------------------------------------------------------------------------

    def tool_size(self) -> tuple[int, int]:
        """The LR height and width the tool gets: the clip's, padded to its size rule."""
        return tuple(padded_size(s, self.config.size_multiple, self.config.size_min)  # type: ignore[return-value]
                     for s in self._lr_hw)

    def _values(self, padded: int) -> dict[str, str]:
        h, w = self.tool_size()
        video = self.config.input_format != "png"
        return {
            "lr_dir": "" if video else str(self.lr_path),
            "lr_video": str(self.lr_path) if video else "",
            "lr_root": str(self.input_root),
            "out_dir": str(self.out_dir),
            "clip": self.clip.name,
            "scale": str(self.scale),
            "num_frames": str(padded),
            "height": str(h),
            "width": str(w),
            "out_height": str(h * self.scale),
            "out_width": str(w * self.scale),
            "fps": f"{self.clip.fps:g}",
            "device": self.config.device,
            "gpu_index": self.gpu_index,
            "work_dir": str(self.clip_dir),
            **self.static,
        }

    def command_line(self, values: dict[str, str]) -> str | list[str]:
        if isinstance(self.template, str):
            return self.template.format(**{k: shlex.quote(v) for k, v in values.items()})
        return [a.format(**values) for a in self.template]

    def _fail(self, what: str) -> ClipError:
        return ClipError(f"clip {self.clip.name!r}: {what}; {self._see_log()}")

    def _see_log(self) -> str:
        """Where the clip's tool log is, for failure reasons: a temporary one is gone after the run."""
        if self.own_work_root:
            return "set method.work_dir=<folder> to keep the tool's log"
        return f"see {self.log_path}"

    def run_tool(self, padded: int) -> None:
        values = self._values(padded)
        cmd = self.command_line(values)
        env = dict(os.environ)
        env.update({str(k): str(v).format(**values) for k, v in (self.config.env or {}).items()})
        cwd = str(Path(self.cwd).expanduser()) if self.cwd else None
        shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
        stats: dict[str, Any] = {"tool_log": None if self.own_work_root else str(self.log_path),
                                 "tool_input_frames": padded,
                                 "tool_input_size": f"{values['width']}x{values['height']}"}
        with open(self.log_path, "w", buffering=1) as logf:
            logf.write(f"# command: {shown}\n# cwd: {cwd or os.getcwd()}\n")
            if self.config.env:
                logf.write(f"# env: {json.dumps({k: env[str(k)] for k in self.config.env})}\n")
            logf.write(f"# started: {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            logf.flush()
            start = time.perf_counter()
            try:
                with GpuMemoryMonitor(self.watch, self.config.gpu_poll_seconds) as gpu:
                    proc = subprocess.Popen(cmd, shell=isinstance(cmd, str), cwd=cwd, env=env, stdout=logf,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
                    try:
                        code = proc.wait(timeout=self.config.timeout or None)
                    except subprocess.TimeoutExpired:
                        _kill_group(proc)
                        code = None
                    except BaseException:  # Ctrl-C: never leave the tool running
                        _kill_group(proc)
                        raise
            except OSError as exc:  # the program (argument list form) or cwd is missing
                raise ConfigError(f"method 'command': cannot start {shown!r}: {exc}") from None
            seconds = time.perf_counter() - start
            logf.write(f"\n# exit code: {code}, wall time {seconds:.2f} s\n")
        stats.update({"tool_exit_code": code, "tool_seconds": seconds, "tool_peak_gpu_mib": gpu.peak_mib,
                      "tool_gpu_baseline_mib": gpu.baseline_mib})
        self.last_clip_stats = stats
        if code is None:
            raise self._fail(f"command timed out after {self.config.timeout:g} s and was killed")
        if code != 0:
            raise self._fail(f"command exited with code {code}")

    def locate_output(self) -> Path:
        """The one frame folder or video under {out_dir} (or the ``output`` option's path)."""
        if self.config.output:
            base = self.out_dir / self.config.output.format(clip=self.clip.name)
            if base.exists():
                return base
            for suffix in sorted(VIDEO_SUFFIXES):
                if base.with_name(base.name + suffix).exists():
                    return base.with_name(base.name + suffix)
            raise self._fail(f"the command wrote no output at {base}")
        found: list[Path] = []
        for folder, dirs, files in os.walk(self.out_dir):
            dirs.sort()
            if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files):
                found.append(Path(folder))
            found += [Path(folder) / f for f in sorted(files) if Path(f).suffix.lower() in VIDEO_SUFFIXES]
        if not found:
            raise self._fail(f"the command wrote no frames or video under {self.out_dir}")
        if len(found) > 1:
            names = ", ".join(str(p.relative_to(self.out_dir)) or "." for p in found[:4])
            raise self._fail(f"the command wrote several outputs ({names}); set method.output to pick one")
        return found[0]

    def _open_output(self, n: int, padded: int) -> VideoReader:
        path = self.locate_output()
        try:
            reader = open_video(path, fps=self.clip.fps)
        except VideoReadError as exc:
            raise self._fail(f"unreadable output ({exc})") from None
        h, w = self.tool_size()
        want = (h * self.scale, w * self.scale)
        low, high = (n, padded) if padded > n else (n, n)
        codec, lossy = output_codec(path, reader)
        self.last_clip_stats.update({"tool_output_frames": reader.num_frames, "tool_output_codec": codec,
                                     "tool_output_lossy": lossy})
        if not low <= reader.num_frames <= high:
            expect = f"{n}" if low == high else f"{low} to {high} (input padded to {padded})"
            raise self._fail(f"the command wrote {reader.num_frames} frames to {path}, expected {expect}")
        if reader.size != want:
            padded_from = "" if (h, w) == self._lr_hw else f", padded from {self._lr_hw[1]}x{self._lr_hw[0]}"
            raise self._fail(
                f"the command wrote {reader.width}x{reader.height} frames to {path}, "
                f"expected {want[1]}x{want[0]} (x{self.scale} of {w}x{h}{padded_from})"
            )
        return reader

    # -- streaming out --------------------------------------------------------------------------

    def flush_chunks(self) -> Iterator[np.ndarray]:
        """Run the tool now (ClipError at once when it fails), then return an iterator over its
        output in chunks of ``chunk_size`` frames, trimmed to the LR frame count. The clip's
        LR/SR frames on disk are removed when the iterator ends, unless keep_files."""
        n = self._frames_in
        folders = (self.input_root, self.out_dir)
        try:
            if n == 0:
                self._close_writer(abort=True)
                self._cleanup(folders)
                return iter(())
            padded = padded_length(n, self.config.frames_multiple, self.config.frames_offset,
                                   self.config.frames_pad_min, self.config.frames_min)
            if padded > n:
                self._open_writer().write(np.repeat(self._last[None], padded - n, axis=0))
            self._close_writer()
            self._last = None
            try:
                self.run_tool(padded)
                reader = self._open_output(n, padded)
            finally:
                self._save_stats()
        except BaseException:
            self._close_writer(abort=True)
            self._cleanup(folders)
            raise
        crop = (self._lr_hw[0] * self.scale, self._lr_hw[1] * self.scale)
        return self._stream(reader, n, crop, folders, self.clip.name, self._see_log())

    def _stream(self, reader: VideoReader, n: int, crop: tuple[int, int], folders: tuple[Path, ...], clip: str,
                see_log: str) -> Iterator[np.ndarray]:
        """Chunks of the first ``n`` output frames, cropped to ``crop`` (the size padding's share
        removed); uses only its arguments, so an iterator abandoned mid-clip cannot touch the next
        clip's files."""
        buf: list[np.ndarray] = []
        count = 0
        try:
            try:
                for frame in reader.iter_frames():
                    if count == n:
                        break
                    buf.append(frame[: crop[0], : crop[1]])
                    count += 1
                    if len(buf) == self.chunk_size:
                        yield np.stack(buf)
                        buf = []
            except VideoReadError as exc:
                raise ClipError(f"clip {clip!r}: output unreadable after {count} frames ({exc}); "
                                f"{see_log}") from None
            if buf:
                yield np.stack(buf)
        finally:
            self._cleanup(folders)

    def _cleanup(self, folders: tuple[Path, ...]) -> None:
        if not self.config.keep_files:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """The run is over (or interrupted): the clip in progress is dropped, and a temporary work
        folder is removed whole; a ``work_dir`` the user gave keeps its logs."""
        self._close_writer(abort=True)
        if self.own_work_root:
            shutil.rmtree(self.work_root, ignore_errors=True)
        elif hasattr(self, "clip_dir"):
            self._cleanup((self.input_root, self.out_dir))

    def flush(self) -> np.ndarray | None:
        """All SR frames at once (for runners that do not call ``flush_chunks``): holds the clip
        in memory, so long clips should go through ``flush_chunks``."""
        chunks = list(self.flush_chunks())
        return np.concatenate(chunks) if chunks else None

    def _save_stats(self) -> None:
        stats = self.last_clip_stats
        (self.clip_dir / "tool_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
        log.info("clip %s: tool exit %s in %.1f s, peak GPU %s MiB; log %s", self.clip.name,
                 stats.get("tool_exit_code"), stats.get("tool_seconds") or 0.0, stats.get("tool_peak_gpu_mib"),
                 self.log_path)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the tool's process group (it was started in a new session), give it 10 s, then
    SIGKILL whatever is left of the group (children that outlived the shell included)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    proc.wait()
