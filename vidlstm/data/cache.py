"""Content-addressed on-disk tensor cache (decoded clips, frozen-backbone features), written atomically.

An entry's key is the sha256 of the video file's bytes plus a digest of everything that changes the
stored tensor (the "spec": backbone, weights fingerprint, frames, size, mean/std, ...) and the view
index. Changing any part of the key, or the file's content, can never return a stale entry.
"""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from vidlstm.files import atomic_write_bytes, atomic_write_text

_CHUNK = 1 << 20
EXTRACTED_FILE = "extracted.json"
"""Beside a cache's kinds: the specs `vidlstm extract` filled, so that a later run with other settings says why it
decodes again (its entries live under another spec digest: without this the misses were silent)."""
VIEWS_KEY = "views per clip"
"""Beside a spec in EXTRACTED_FILE: the views per clip `vidlstm extract` cached under it."""


def sha256_file(path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks (videos can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def spec_digest(spec: dict) -> str:
    """A stable hex digest of a JSON-serialisable spec (key order does not matter)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def module_fingerprint(module: torch.nn.Module) -> str:
    """Hex sha256 over a module's parameters and buffers (names, shapes, dtypes, bytes): the weights' identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class ContentHasher:
    """sha256 of files, remembered in ``index_path`` by (absolute path, size, mtime) so unchanged files are
    never read twice. A changed size or mtime re-hashes; the index is rewritten atomically."""

    def __init__(self, index_path):
        self.index_path = Path(index_path)
        self._lock = threading.Lock()
        self._dirty = False
        try:
            self._index = json.loads(self.index_path.read_text())
        except (OSError, json.JSONDecodeError):
            self._index = {}  # missing or torn index: hashes are recomputed, never trusted blindly

    def digest(self, path) -> str:
        path = Path(path).resolve()
        stat = path.stat()
        key = str(path)
        entry = self._index.get(key)
        if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
            return entry["sha256"]
        value = sha256_file(path)
        with self._lock:
            self._index[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": value}
            self._dirty = True
        return value

    def save(self) -> None:
        if not self._dirty:
            return
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.index_path, json.dumps(self._index))
        self._dirty = False


class TensorCache:
    """Entries of named tensors under ``root/<kind>/<spec digest>/<sha[:2]>/<sha>.v<view>.safetensors``."""

    def __init__(self, root, kind: str, spec: dict):
        self.root = Path(root)
        self.spec = dict(spec, kind=kind)
        self.folder = self.root / kind / spec_digest(self.spec)[:24]
        self.hasher = ContentHasher(self.root / "content_hashes.json")
        self.hits = 0
        self.misses = 0

    def entry_path(self, content_sha: str, view: int) -> Path:
        return self.folder / content_sha[:2] / f"{content_sha}.v{view}.safetensors"

    def has(self, content_sha: str, view: int) -> bool:
        """Whether a readable entry exists (its safetensors header parses); a damaged one counts as absent."""
        try:
            with safe_open(self.entry_path(content_sha, view), framework="pt"):
                return True
        except (SafetensorError, OSError):
            return False

    def get(self, content_sha: str, view: int) -> dict[str, torch.Tensor] | None:
        path = self.entry_path(content_sha, view)
        try:
            tensors = load_file(path)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (SafetensorError, OSError):  # a damaged entry is a miss and gets rewritten
            self.misses += 1
            return None
        self.hits += 1
        return tensors

    def put(self, content_sha: str, view: int, tensors: dict[str, torch.Tensor]) -> Path:
        path = self.entry_path(content_sha, view)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (self.folder / "spec.json").exists():
            atomic_write_text(self.folder / "spec.json", json.dumps(self.spec, indent=1, sort_keys=True, default=str))
        # Readers see the old entry or the whole new one, never half a file. Serialised here and written by Python,
        # so that a full disk is an OSError naming the entry (safetensors' own writer raises its SafetensorError).
        atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
        return path

    def _extracted(self) -> dict:
        try:
            record = json.loads((self.root / EXTRACTED_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def record_extracted(self, views: int | None = None) -> None:
        """Note this cache's spec as one `vidlstm extract` filled, with its ``views`` per clip (a view is an entry of
        the spec, not part of it)."""
        record = self._extracted()
        name = f"{self.folder.parent.name}/{self.folder.name}"
        earlier = record.get(name)
        earlier = earlier.get(VIEWS_KEY) if isinstance(earlier, dict) else None
        views = max(views or 0, earlier if isinstance(earlier, int) else 0)  # a later extract of fewer keeps them all
        record[name] = dict(self.spec, **{VIEWS_KEY: views} if views else {})
        atomic_write_text(self.root / EXTRACTED_FILE, json.dumps(record, indent=1, sort_keys=True, default=str))

    def extracted_with_other_settings(self, content_shas, views: int | None = None) -> str | None:
        """Where `vidlstm extract` cached any of these files under another spec of this kind, or under this one with
        fewer than ``views`` views per clip: how that differs from this run, in words ("num_frames 8, not 16; ...");
        None otherwise."""
        for name, spec in self._extracted().items():
            kind, _, folder = name.partition("/")
            if kind != self.folder.parent.name or not isinstance(spec, dict):
                continue
            spec = dict(spec)
            extracted_views = spec.pop(VIEWS_KEY, None)
            if folder == self.folder.name:
                if views and isinstance(extracted_views, int) and extracted_views < views:
                    return f"views {extracted_views}, not {views}"
                continue
            other = self.root / kind / folder
            if any((other / sha[:2]).is_dir() and any((other / sha[:2]).glob(f"{sha}.v*.safetensors"))
                   for sha in content_shas):
                return _differences(spec, self.spec)
        return None


def _flat(spec: dict) -> dict:
    flat = {}
    for key, value in spec.items():
        flat.update(_flat(value) if isinstance(value, dict) else {key: value})
    return flat


def _differences(before: dict, now: dict) -> str:
    """The settings that differ between two specs, as "name BEFORE, not NOW"; weights by name only."""
    a, b = _flat(before), _flat(now)
    parts = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) == b.get(key):  # specs hold JSON values (lists, numbers, strings), as spec.json keeps them
            continue
        parts.append("other backbone weights" if key == "weights" else f"{key} {a.get(key)}, not {b.get(key)}")
    return "; ".join(parts) or "other settings"
