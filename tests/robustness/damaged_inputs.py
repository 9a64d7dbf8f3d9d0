"""Make damaged and odd inputs from healthy videos: truncations, byte flips, wrong names, loops, tiny and huge clips.

Plain functions (no pytest) so that the robustness tests and benchmarks/robustness_report.py build the
same corpus. Each maker writes into the folder or path it is given and returns the path; ``generated_corpus``
and ``real_corpus`` return ``Input(kind, path, origin)`` records, the kind ("truncated", "byte-flips", ...)
being what tests expect outcomes for and the report groups by.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Cut points as fractions of the file: from inside the header to one byte short of the end.
TRUNCATION_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.999)
HEADER_ONLY_BYTES = (1024, 4096)
FLIP_FRACTIONS = (0.001, 0.01)  # share of the file's bytes overwritten with random values


# --- healthy inputs, made on the spot ------------------------------------------------------------------

def moving_square_clip(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a bright square crossing a gradient, so every frame differs; any size down to 1x1
    (tests/conftest.py's gradient_clip needs at least 4 px)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 96)], -1)
    frames = np.repeat(base[None].astype(np.uint8), num_frames, axis=0)  # (T, H, W, 3)
    side = max(1, min(height, width) // 4)
    for t in range(num_frames):
        x = int((width - side) * t / max(num_frames - 1, 1))
        y = int(rng.integers(0, height - side + 1))
        frames[t, y:y + side, x:x + side] = 255
    return frames


def encode_exact(path, frames: np.ndarray, fps: float = 25.0, codec: str = "libx264",
                 pix_fmt: str = "yuv444p") -> Path:
    """Encode (T, H, W, 3) uint8 at exactly its size with any FFmpeg encoder (GIF too). vidlstm.io's
    write_video pads to even sizes for yuv420p; yuv444p needs no padding, so 1x1 stays 1x1."""
    from vidlstm.io.encode import write_video

    options = {"preset": "ultrafast"} if codec == "libx264" else None
    return write_video(path, frames, fps=fps, codec=codec, pix_fmt=pix_fmt, options=options)


def write_zero_frame_clip(path, width: int = 32, height: int = 32) -> Path:
    """An AVI whose MPEG-4 video stream is declared (size, rate) but holds no frame at all.

    AVI, because the MP4 and Matroska muxers drop a stream that never received a packet.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), mode="w")
    stream = container.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def write_gif(path, frames: np.ndarray, fps: int = 10) -> Path:
    """An animated GIF (FFmpeg's gif encoder, 8-bit palette)."""
    return encode_exact(path, frames, fps=fps, codec="gif", pix_fmt="rgb8")


def write_png(path, width: int = 16, height: int = 16) -> Path:
    """A valid one-image PNG (a gradient) at ``path``, whatever its suffix says."""
    import cv2

    image = moving_square_clip(1, height, width)[0][:, :, ::-1]  # (H, W, 3) BGR, as OpenCV wants it
    ok, png = cv2.imencode(".png", np.ascontiguousarray(image))
    assert ok, "OpenCV could not encode a PNG"
    Path(path).write_bytes(png.tobytes())
    return Path(path)


# --- damage applied to an existing file ----------------------------------------------------------------

def truncate(src, dest, keep_bytes: int) -> Path:
    """The first ``keep_bytes`` bytes of ``src``: a download or copy that stopped early."""
    Path(dest).write_bytes(Path(src).read_bytes()[:keep_bytes])
    return Path(dest)


def flip_bytes(src, dest, fraction: float, seed: int) -> Path:
    """``src`` with ``fraction`` of its bytes (at least one) changed to other random values, reproducibly."""
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    positions = rng.choice(len(data), size=max(1, int(len(data) * fraction)), replace=False)
    for pos, value in zip(positions, rng.integers(0, 256, size=len(positions))):
        data[pos] ^= int(value) or 0xFF  # XOR with a non-zero byte always changes it
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def symlink_loop(dest) -> Path:
    """``dest`` -> ``dest.loop`` -> ``dest``: opening either fails with ELOOP."""
    dest = Path(dest)
    partner = dest.with_name(dest.name + ".loop")
    os.symlink(partner.name, dest)
    os.symlink(dest.name, partner)
    return dest


def damage_variants(src, dest_dir, stem: str, seed: int = 0) -> list[tuple[str, Path]]:
    """Every byte-level damage of one healthy file: 10 truncations, byte flips, header-only copies."""
    src, dest_dir = Path(src), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    size = src.stat().st_size
    suffix = src.suffix
    out: list[tuple[str, Path]] = []
    for fraction in TRUNCATION_FRACTIONS:
        keep = min(size - 1, max(1, int(size * fraction)))
        out.append(("truncated", truncate(src, dest_dir / f"{stem}_cut{keep}{suffix}", keep)))
    for i, fraction in enumerate(FLIP_FRACTIONS):
        out.append(("byte-flips", flip_bytes(src, dest_dir / f"{stem}_flip{i}{suffix}", fraction, seed=seed + i)))
    for nbytes in HEADER_ONLY_BYTES:
        if nbytes < size:
            out.append(("header-only", truncate(src, dest_dir / f"{stem}_head{nbytes}{suffix}", nbytes)))
    return out


def odd_inputs(dest_dir, mp4_source, big: bool = True) -> list[tuple[str, Path]]:
    """The non-byte-level cases: wrong names, a folder, a loop, a FIFO, extreme sizes, no/one frame, a GIF."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, Path]] = [
        ("wrong-extension", Path(shutil.copy(mp4_source, dest_dir / "really_an_mp4.avi"))),
        ("wrong-extension", write_png(dest_dir / "really_a_png.mp4")),
    ]
    folder = dest_dir / "x.mp4"
    folder.mkdir()
    out.append(("directory", folder))
    out.append(("symlink-loop", symlink_loop(dest_dir / "loop.mp4")))
    fifo = dest_dir / "fifo.mp4"
    os.mkfifo(fifo)  # opening it for reading would block forever: the hang guard's case
    out.append(("fifo", fifo))
    out.append(("1x1", encode_exact(dest_dir / "one_pixel.mp4", moving_square_clip(6, 1, 1))))
    if big:
        out.append(("4k", encode_exact(dest_dir / "uhd_4k.mp4", moving_square_clip(2, 2160, 3840), pix_fmt="yuv420p")))
    out.append(("zero-frame", write_zero_frame_clip(dest_dir / "zero_frames.avi")))
    out.append(("one-frame", encode_exact(dest_dir / "one_frame.mp4", moving_square_clip(1, 32, 32))))
    out.append(("gif", write_gif(dest_dir / "animated.gif", moving_square_clip(6, 32, 48))))
    empty = dest_dir / "empty.mp4"
    empty.write_bytes(b"")
    out.append(("empty", empty))
    return out


def unreadable_copy(src, dest) -> Path:
    """A copy of ``src`` with mode 000: unreadable, except for root, who reads any file."""
    dest = Path(shutil.copy(src, dest))
    dest.chmod(0)
    return dest


def can_make_unreadable_files() -> bool:
    return os.name == "posix" and os.geteuid() != 0


# --- the corpus ------------------------------------------------------------------------------------------

# Small real files of ../shared/data/videos (three containers and codecs) that get every byte-level damage.
REAL_SOURCES = (
    "mmaction2/demo/demo.mp4",  # H.264 in MP4
    "mmaction2/tests/data/test.avi",  # MPEG-4 Part 2 in AVI, with audio
    "moviepy/media/big_buck_bunny_432_433.webm",  # VP8 in WebM
)
# Real files that are odd as they are.
REAL_ODD = {
    "moviepy/media/-video-with-dash-.mp4": "1x1",
    "moviepy/media/pigs_in_a_polka.gif": "gif",
    "decord/tests/test_data/corrupted.mp4": "corrupt-packet",
    "moviepy/media/doc_medias/result.webm": "empty",
}


@dataclass(frozen=True)
class Input:
    """One input of the corpus: what kind of damage it has, where it is, and whether it came from a real video."""

    kind: str
    path: Path
    origin: str  # "generated" or "real"


def generated_corpus(dest_dir, big: bool = True) -> list[Input]:
    """A healthy generated clip, every damage of it, and the odd inputs, all in ``dest_dir`` (one folder)."""
    dest_dir = Path(dest_dir)
    healthy = encode_exact(dest_dir / "healthy.mp4", moving_square_clip(24, 48, 64), pix_fmt="yuv420p")
    pairs = [("healthy", healthy)] + damage_variants(healthy, dest_dir, "healthy") + odd_inputs(dest_dir, healthy, big)
    return [Input(kind, path, "generated") for kind, path in pairs]


def real_corpus(videos_root, dest_dir, seed: int = 0) -> list[Input]:
    """Copies of the real sources with every damage, plus the real odd files, in ``dest_dir``."""
    videos_root, dest_dir = Path(videos_root), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    out: list[Input] = []
    for i, rel in enumerate(REAL_SOURCES):
        src = videos_root / rel
        stem = f"real{i}_{src.stem}"
        healthy = Path(shutil.copy(src, dest_dir / f"{stem}{src.suffix}"))
        out.append(Input("healthy", healthy, "real"))
        damaged = damage_variants(healthy, dest_dir, stem, seed=seed + 10 * i)
        out += [Input(kind, path, "real") for kind, path in damaged]
    for rel, kind in REAL_ODD.items():
        src = videos_root / rel
        out.append(Input(kind, Path(shutil.copy(src, dest_dir / src.name)), "real"))
    return out


def class_folders(inputs: list[Input], root, classes=("a", "b"), clean_per_class: int = 3) -> dict[str, Input]:
    """A folder-per-class training set under ``root``: ``clean_per_class`` fresh clips per class, then the
    inputs dealt out to the classes in turn (folders, loops and FIFOs re-made, files copied).

    Returns {name relative to ``root`` ("a/healthy_cut117.mp4"): the Input as placed there}.
    """
    root = Path(root)
    for c, label in enumerate(classes):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(clean_per_class):
            encode_exact(root / label / f"clean{i}.mp4", moving_square_clip(12, 32, 32, seed=10 * c + i),
                         pix_fmt="yuv420p")
    placed: dict[str, Input] = {}
    for n, item in enumerate(inputs):
        label = classes[n % len(classes)]
        dest = root / label / item.path.name
        if item.kind == "directory":
            dest.mkdir()
        elif item.kind == "symlink-loop":
            symlink_loop(dest)
        elif item.kind == "fifo":
            os.mkfifo(dest)
        elif item.kind == "unreadable":  # no one but root can copy it: make a new one
            encode_exact(dest, moving_square_clip(12, 32, 32), pix_fmt="yuv420p").chmod(0)
        else:
            shutil.copy(item.path, dest)
        placed[f"{label}/{dest.name}"] = Input(item.kind, dest, item.origin)
    return placed


# --- what must happen ------------------------------------------------------------------------------------

# Kinds no decoder can read (nothing there, or nothing decodable) and kinds every run must read.
MUST_FAIL = frozenset({"empty", "directory", "fifo", "symlink-loop", "zero-frame", "header-only", "corrupt-packet",
                       "unreadable"})
MUST_DECODE = frozenset({"healthy", "1x1", "4k", "one-frame", "gif", "wrong-extension"})


def expected_status(kind: str) -> str | None:
    """"error", "ok", or None where either is fine (a truncation or byte flip may leave a playable video)."""
    if kind in MUST_FAIL:
        return "error"
    if kind in MUST_DECODE:
        return "ok"
    return None
