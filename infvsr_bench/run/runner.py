"""The clip loop: stream LR chunks through a method, SR + GT chunks into metrics, record results.

The runner is the only place that knows methods, data and metrics together, through their contracts
(infvsr_bench/contracts.py): the application hands it built ones. It times the method
alone, validates every output chunk, aligns outputs with GT by frame index, and turns a problem
with one clip into a failed row (with the reason) while the run goes on with the other clips.

Pipelined (the default), LR and GT are decoded ahead by reader threads and the metrics and the writer
consume SR chunks in their own threads while the method works on the next chunk, all behind bounded
queues (infvsr_bench/run/pipeline.py); the same calls in the same order, so the same results as on one
thread. The method's time and memory stay its own: its timer runs only inside its calls, and memory
windows are exclusive (infvsr_bench/run/memory.py), so metric updates wait while the method is in a call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from infvsr_bench.contracts import ClipEntry, ClipInfo, Method, Metric
from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ClipError, InfvsrError, VideoReadError
from infvsr_bench.io.readers import VideoReader, open_video, unmatched_frame
from infvsr_bench.io.transcode import LossyEncoding, TranscodeStream
from infvsr_bench.io.writers import FrameWriter, open_writer
from infvsr_bench.progress import progress_bar
from infvsr_bench.results.store import RunStore, clip_folder_name
from infvsr_bench.run.leases import Lease, LeaseLost, describe, read_holder
from infvsr_bench.run.memory import MemoryAccount, process_peak_cuda_mib, process_peak_rss_mib, settle
from infvsr_bench.run.pipeline import Stages

log = logging.getLogger("infvsr_bench")


def to_uint8_frames(sr: Any, expected_hw: tuple[int, int]) -> np.ndarray:
    """Validate one method output chunk; floats in [0,1] are quantised like a saved 8-bit video."""
    if isinstance(sr, torch.Tensor):
        sr = sr.detach().cpu().numpy()
    if not isinstance(sr, np.ndarray):
        raise ClipError(f"method returned {type(sr).__name__}, expected a numpy array (T,H,W,3)")
    if sr.ndim != 4 or sr.shape[-1] != 3 or tuple(sr.shape[1:3]) != expected_hw:
        raise ClipError(
            f"method output has shape {tuple(sr.shape)}, expected (T, {expected_hw[0]}, {expected_hw[1]}, 3)"
        )
    if sr.dtype == np.uint8:
        return sr
    if np.issubdtype(sr.dtype, np.floating):
        if not np.isfinite(sr).all():
            raise ClipError("method output contains NaN or Inf")
        return (np.clip(sr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    raise ClipError(f"method output has dtype {sr.dtype}, expected uint8 or float in [0,1]")


@dataclass(frozen=True)
class RunOptions:
    """How the runner treats every clip of a run; built once by the application from the run config."""

    max_frames: int | None = None  # None: whole clips
    save_outputs: bool = False  # write each clip's SR frames under the run folder's outputs/
    output_codec: str = "ffv1"  # of the saved outputs (png: a folder of frames)
    progress: bool = True
    score_through: LossyEncoding | None = None  # the metrics see the SR frames after this lossy encode
    pipeline: bool = True  # overlap decoding, the method, scoring and writing in threads
    lease_timeout_s: float = 120.0  # a clip's lease older than this is taken over

    def frames_of(self, num_frames: int) -> int:
        """Frames the run feeds of a clip of ``num_frames`` (``max_frames`` may cut it short)."""
        return num_frames if self.max_frames is None else min(num_frames, self.max_frames)


@dataclass
class ClipOutcome:
    frames: pd.DataFrame | None  # None for a failed clip
    row: dict[str, Any]
    curves: pd.DataFrame | None = None


@dataclass
class _Timer:
    """Wall time of the method alone (CUDA-synchronised so queued kernels are counted)."""

    device: torch.device
    seconds: float = 0.0
    _start: float = field(default=0.0, repr=False)

    def __enter__(self) -> "_Timer":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - self._start


@dataclass
class MemoryAccounts:
    """The method's and the metrics' own memory, kept apart (see infvsr_bench.run.memory)."""

    method: MemoryAccount
    metrics: MemoryAccount

    @classmethod
    def for_method(cls, method: Method) -> "MemoryAccounts":
        return cls(MemoryAccount(method.device), MemoryAccount(resolve_device("auto").type))


def chunk_layout(method: Method, feed_starts: list[int]) -> tuple[list[int] | None, str]:
    """Where the method's output can have seams (None: unknown) and what that rests on, for the clip row."""
    if method.feed_chunks:
        return feed_starts, "feed: one chunk per process() call (chunk_size)"
    layout = method.chunk_layout()
    if layout is None:
        return None, "unknown: the method declares no chunk layout, so boundary metrics are not applicable"
    if not layout:
        return [], "none: the method works frame by frame, so boundary metrics are not applicable"
    return [int(i) for i in layout], "declared by the method"


def run_clip(
    clip: ClipEntry,
    method: Method,
    metrics: list[Metric],
    options: RunOptions = RunOptions(),
    output_path: Path | None = None,
    memory: MemoryAccounts | None = None,
    lease: Lease | None = None,
) -> ClipOutcome:
    """Process and score one clip, writing its SR frames to ``output_path`` if given; raises ClipError /
    VideoReadError for problems with this clip.

    Four steps: open and check the clip's LR (and GT), begin the metrics, stream the chunks through the
    method to the metrics and the writer, then compute the metrics and build the clip's row.
    With ``options.score_through`` the metrics see the SR frames after that lossy encode and decode
    (outside the method's timer; frames reach them after the codec's latency); saved outputs stay the
    method's. ``options.pipeline`` overlaps the stages in threads (see the module docstring); a ``lease``
    that another worker takes over stops the clip between chunks (LeaseLost).
    """
    memory = memory or MemoryAccounts.for_method(method)
    opened = _open_clip(clip, method.scale, metrics, options)
    writer = open_writer(output_path, fps=opened.lr.fps, codec=options.output_codec) if output_path else None
    _begin_clip(opened, metrics, memory)
    method_seconds, feed_starts = _stream(opened, method, metrics, writer, options, memory, lease)
    return _finish(opened, method, metrics, method_seconds, feed_starts, options, memory)


@dataclass(frozen=True)
class _OpenClip:
    """One clip opened for the run: its entry, its readers and what follows from them."""

    entry: ClipEntry
    lr: VideoReader
    gt: VideoReader | None
    frames: int  # frames fed to the method (``max_frames`` may cut the clip short)
    sr_hw: tuple[int, int]  # the method's output frame size


def _open_clip(clip: ClipEntry, scale: int, metrics: list[Metric], options: RunOptions) -> _OpenClip:
    """The clip's LR and GT readers, checked against each other and the metrics (ClipError naming the problem)."""
    lr = open_video(clip.lr)
    total = options.frames_of(lr.num_frames)
    needs_gt = any(m.needs_gt for m in metrics)
    gt = None
    if clip.gt is not None:
        gt = open_video(clip.gt)
        if gt.num_frames != lr.num_frames:
            odd = unmatched_frame(gt, lr)
            raise ClipError(f"GT has {gt.num_frames} frames but LR has {lr.num_frames}"
                            + (f" ({odd} has no frame of its number on the other side)" if odd else ""))
        if gt.size != (lr.height * scale, lr.width * scale):
            raise ClipError(
                f"GT is {gt.width}x{gt.height} but LR {lr.width}x{lr.height} x{scale} "
                f"is {lr.width * scale}x{lr.height * scale}"
            )
    elif needs_gt:
        names = [m.column for m in metrics if m.needs_gt]
        raise ClipError(f"no GT for this clip, but full-reference metric(s) {names} need it")
    return _OpenClip(clip, lr, gt, total, (lr.height * scale, lr.width * scale))


def _begin_clip(clip: _OpenClip, metrics: list[Metric], memory: MemoryAccounts) -> None:
    """Start the clip's memory accounts and tell every metric, reset, what the clip will feed."""
    settle()
    memory.method.start_clip()
    memory.metrics.start_clip()
    with memory.metrics:
        for m in metrics:
            m.reset()
            m.begin_clip(clip.frames)
            if m.needs_chunk_layout:
                m.set_scene_cuts(None if clip.entry.cuts is None else list(clip.entry.cuts))


def _stream(clip: _OpenClip, method: Method, metrics: list[Metric], writer: FrameWriter | None,
            options: RunOptions, memory: MemoryAccounts, lease: Lease | None) -> tuple[float, list[int]]:
    """Feed the clip's LR chunks to the method and its SR chunks to the metrics (through the lossy codec of
    ``options.score_through`` if any) and the writer; returns the method's seconds and the first frame of
    each chunk fed. The writer is closed when every frame is written, aborted on any error."""
    lr, gt, total, out_hw = clip.lr, clip.gt, clip.frames, clip.sr_hw
    codec = TranscodeStream(options.score_through, *out_hw, lr.fps) if options.score_through is not None else None
    timer = _Timer(method.device)
    done = scored = 0
    feed_starts: list[int] = []
    stages = Stages(threaded=options.pipeline)

    def score(sr: np.ndarray) -> None:
        nonlocal scored
        n = sr.shape[0]
        if n == 0:  # a lossy codec releases nothing until its look-ahead fills; metrics never see empty chunks
            return
        gt_chunk = np.stack([next(gt_frames) for _ in range(n)]) if gt_frames is not None else None
        with memory.metrics:
            for m in metrics:
                m.update(sr, gt_chunk, scored)  # GT whenever the clip has it (optional for NR metrics)
        scored += n

    def consume(sr_raw: Any) -> None:
        nonlocal done
        if sr_raw is None:
            return
        sr = to_uint8_frames(sr_raw, out_hw)
        n = sr.shape[0]
        if n == 0:  # a call may return zero frames (e.g. InfVSR's first chunk still being assembled)
            return
        if done + n > total:
            raise ClipError(f"method returned more frames than the {total} it was given")
        if options.pipeline and (sr is sr_raw or isinstance(sr_raw, torch.Tensor)):
            sr = sr.copy()  # the method may reuse its output buffer while other threads still read it
        scorer.put(sr)
        if saver is not None:
            saver.put(sr)
        done += n

    try:
        with stages, progress_bar(total=total, desc=f"clip {clip.entry.name}", unit="frame", leave=False,
                                  enabled=options.progress) as bar:
            # GT one chunk ahead and LR two chunks ahead (reader threads); SR chunks to the metrics and
            # the writer, two waiting each: memory bounded by the chunk size, never by the clip length.
            gt_frames = stages.prefetch(gt.iter_frames(), method.chunk_size, "gt") if gt is not None else None
            scorer = stages.sink(score if codec is None else lambda sr: score(codec.push(sr)), 2, "metrics")
            saver = stages.sink(writer.write, 2, "writer") if writer is not None else None
            with memory.method:
                method.reset(ClipInfo(clip.entry.name, total, lr.height, lr.width, lr.fps, lr.num_frames))
            start = 0
            for chunk in stages.prefetch(lr.iter_chunks(method.chunk_size, max_frames=total), 2, "lr"):
                if lease is not None:
                    lease.check()
                feed_starts.append(start)
                start += len(chunk)
                with memory.method, timer:
                    sr = method.process(chunk)
                consume(sr)
                bar.update(len(chunk))
            with memory.method, timer:
                tail = method.flush_chunks()
            while True:
                with memory.method, timer:
                    sr = next(tail, None)
                if sr is None:
                    break
                consume(sr)
            if done != total:
                raise ClipError(f"method returned {done} frames for {total} input frames")
            scorer.finish()
            if codec is not None:
                score(codec.finish())
            if saver is not None:
                saver.finish()
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return timer.seconds, feed_starts


def _finish(clip: _OpenClip, method: Method, metrics: list[Metric], method_seconds: float, feed_starts: list[int],
            options: RunOptions, memory: MemoryAccounts) -> ClipOutcome:
    """Compute every metric (handing boundary metrics the method's chunk layout) and build the clip's
    per-frame table, row and curves."""
    lr, total, name = clip.lr, clip.frames, clip.entry.name
    frames = pd.DataFrame({"frame": np.arange(total, dtype=np.int64)})
    row: dict[str, Any] = {"clip": name, "status": "ok", "reason": None, "frames": total}
    layout, layout_note = chunk_layout(method, feed_starts)
    curves = []
    for m in metrics:
        if m.needs_chunk_layout:
            m.set_chunk_starts(layout)
        with memory.metrics:
            result = m.compute()
        frames = frames.merge(result.frames, on="frame", how="left")
        row.update(result.scalars)
        if result.curves is not None and len(result.curves):
            curves.append(result.curves.assign(metric=m.column))
    frames.insert(0, "clip", name)
    curve_table = pd.concat(curves, ignore_index=True).assign(clip=name) if curves else None
    row.update(
        {
            "lr_height": lr.height,
            "lr_width": lr.width,
            "lr_frames": lr.num_frames,  # the whole clip: ``frames`` fewer means max_frames cut it short
            "method_seconds": method_seconds,
            "method_fps": total / method_seconds if method_seconds > 0 else float("inf"),
            # The method's own memory (what it holds + its calls' peaks), the metrics' own, and the
            # whole process since it started (every component, every clip so far).
            **memory.method.clip_columns("method"),
            **memory.metrics.clip_columns("metrics"),
            "process_peak_rss_mib": process_peak_rss_mib(),
            "process_peak_cuda_mib": process_peak_cuda_mib(method.device),
            "num_chunks": None if layout is None else len(layout),
            "chunk_starts": layout,
            "chunk_layout": layout_note,
            "scene_cuts": None if clip.entry.cuts is None else [int(c) for c in clip.entry.cuts if c < total],
            "score_through": ("lossless" if options.score_through is None
                              else options.score_through.describe(*clip.sr_hw)),
            **method.clip_record(),
        }
    )
    return ClipOutcome(frames, row, curve_table)


def failed_row(clip: str, reason: str) -> dict[str, Any]:
    return {"clip": clip, "status": "failed", "reason": reason, "frames": None}


def run_all(
    clips: list[ClipEntry],
    method: Method,
    metrics: list[Metric],
    store: RunStore,
    options: RunOptions = RunOptions(),
    memory: MemoryAccounts | None = None,
) -> None:
    """Run every unfinished clip of ``clips``, writing each clip's files into ``store``. Finished clips are
    skipped and failed ones retried, except those another worker failed since this call began; a clip
    leased by another worker is left to it. The run's tables and record are the caller's ``store.merge``, once
    at the end (a run killed with kill -9 leaves none: ``report`` builds them from the clip folders)."""
    memory = memory or MemoryAccounts.for_method(method)
    suffix = {"png": ""}.get(options.output_codec, ".mkv")
    began = time.time()
    for clip in progress_bar(clips, desc=method.name, unit="clip", enabled=options.progress):
        if store.is_finished(clip.name):
            log.info("clip %s: already finished, skipped", clip.name)
            continue
        lease = store.claim(clip.name, options.lease_timeout_s)
        if lease is None:
            log.info("clip %s: in progress by %s, skipped", clip.name, describe(read_holder(store.lease_path(clip.name))))
            continue
        with lease:
            row = store.clip_row(clip.name)  # again, now that no other worker can be writing it
            if row is not None and row.get("status") == "ok":
                log.info("clip %s: already finished, skipped", clip.name)
                continue
            if row is not None and store.row_time(clip.name) >= began:
                log.info("clip %s: failed in another worker since this one started, not retried now", clip.name)
                continue
            log.info("clip %s: processing", clip.name)
            out = store.dir / "outputs" / f"{clip_folder_name(clip.name)}{suffix}" if options.save_outputs else None
            if out is not None:
                out.parent.mkdir(exist_ok=True)
            outcome = _attempt(clip.name, partial(run_clip, clip, method, metrics, options, out, memory, lease))
            if outcome is None or lease.lost:
                log.warning("clip %s: its lease was taken over by %s; the result is left to that worker",
                            clip.name, describe(lease.lost_to))
                continue
            store.write_clip(clip.name, outcome.frames, outcome.row, outcome.curves)


def _attempt(clip: str, work: Callable[[], ClipOutcome]) -> ClipOutcome | None:
    """The clip's outcome, or a failed row for a problem with this clip; None when its lease was lost."""
    try:
        return work()
    except LeaseLost:
        return None
    except (ClipError, VideoReadError) as exc:
        reason = str(exc)
    except InfvsrError:
        raise
    except Exception as exc:  # a crash inside a method must not take the other clips down
        reason = f"{type(exc).__name__}: {exc}"
    log.error("clip %s failed: %s", clip, reason)
    return ClipOutcome(None, failed_row(clip, reason))
