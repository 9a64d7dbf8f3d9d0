"""The export stage: a model folder -> ONNX or torch.export files (encoder, temporal, streaming step) + a JSON card.

Layout of an export (``-o OUT``): when OUT ends in the format's suffix (``model.onnx``), the parts are
written beside it as ``model.encoder.onnx``, ``model.temporal.onnx``, ``model.stream.onnx`` and the
description as ``model.json``; otherwise OUT is a folder holding ``encoder.onnx``, ``temporal.onnx``,
``stream.onnx`` and ``export.json``. The JSON says what each input and output is, the labels, the
temperature and the preprocessing, so the ONNX files run without vidlstm (onnxruntime alone).

Every written file is loaded back and checked against the PyTorch model on two batch sizes and two
clip lengths other than the ones it was traced with; the differences are recorded in the JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from vidlstm.checkpoint import load_model, unfinished_note
from vidlstm.defaults import DIFF_CHANNEL
from vidlstm.errors import UsageError, VidlstmError
from vidlstm.logs import log as logger
from vidlstm.models import LRCN
from vidlstm.stages.export_graphs import (ClipEncoderGraph, StreamStepGraph, TemporalGraph,
                                          dynamic_shapes, graph_copy)
from vidlstm.stages.export_paths import (FORMATS, WRITE_ERRNOS, held_outputs, partner_left_out, put_in_place,
                                        temporary_files)

PART_NAMES = ("encoder", "temporal", "stream")  # "stream" only for models that stream (a read-out or causal head)
EXAMPLE_SIZES = {"batch": 2, "time": 3}  # traced with these; every other batch size and length >= 1 works
CHECK_SIZES = ({"batch": 1, "time": 1}, {"batch": 3, "time": 7})  # verified on these after writing
ONNX_OPSET = 17
LOAD_HINTS = {
    "onnx": "onnxruntime.InferenceSession(file); inputs and outputs by the names below",
    "torch": "import vidlstm.stages.export_graphs (registers the vidlstm::lstm operator), then "
             "torch.export.load(file).module()(*inputs)",
}
ATOL, RTOL = 1e-4, 1e-4  # float32 exporters reorder sums: measured differences are ~1e-6


@dataclass
class ExportConfig:
    """What `vidlstm export` writes."""

    model_dir: str
    out: str  # a folder, or a file name ending in the format's suffix (see the module docstring)
    format: str = "onnx"  # "onnx" (onnxruntime, opset ONNX_OPSET) or "torch" (torch.export programs, .pt2)
    verify: bool = True  # load each written file back and compare it with the PyTorch model


@dataclass
class TensorSpec:
    """One graph input or output: name, shape (ints, or names of dynamic axes), dtype and meaning."""

    name: str
    shape: list
    dtype: str
    doc: str

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype, "doc": self.doc}


@dataclass
class Part:
    """One exported graph: the module to export, its interface, inputs to trace/check it, the eager reference."""

    name: str
    module: torch.nn.Module
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    make_inputs: Callable[[int, int, torch.Generator], tuple]  # (batch, time, generator) -> input tensors
    reference: Callable[..., tuple]  # the LRCN's own method on the same inputs -> outputs
    doc: str = ""
    verified_max_abs_diff: float | None = None  # set by verify_part


def build_parts(model: LRCN, custom_lstm: bool) -> list[Part]:
    """The encoder, temporal and (with a causal head) streaming graphs of ``model``, with their interfaces.

    ``custom_lstm``: LSTMs behind the ``vidlstm::lstm`` operator, for torch.export (see export_graphs);
    False keeps nn.LSTM, for ONNX.
    """
    cfg = model.config
    size, dim, classes = cfg.image_size, model.feature_dim, cfg.num_classes
    layers, hidden = cfg.num_layers, cfg.hidden_size
    graph_model = graph_copy(model, custom_lstm)
    uses_prev = DIFF_CHANNEL[cfg.input_mode] is not None

    def encoder_inputs(batch, time, gen):
        frames = torch.rand(batch, time, 3, size, size, generator=gen)  # (B, T, 3, H, W)
        return (frames, torch.rand(batch, 3, size, size, generator=gen)) if uses_prev else (frames,)

    def temporal_inputs(batch, time, gen):
        lengths = torch.randint(1, time + 1, (batch,), generator=gen)  # (B,)
        lengths[0] = time  # one full-length clip, the others padded
        return torch.randn(batch, time, dim, generator=gen), lengths

    def stream_inputs(batch, time, gen):
        state = [0.1 * torch.randn(layers, batch, hidden, generator=gen) for _ in range(2)]  # (L, B, H) each
        return (torch.randn(batch, time, dim, generator=gen), *state)

    frames_spec = TensorSpec("frames", ["batch", "time", 3, size, size], "float32",
                             f"consecutive RGB frames in [0, 1], resized to {size}x{size}")
    features_spec = TensorSpec("features", ["batch", "time", dim], "float32", "per-frame backbone features")
    encoder = Part(
        "encoder", ClipEncoderGraph(graph_model),
        [frames_spec] + ([TensorSpec("prev_frame", ["batch", 3, size, size], "float32",
                                     "the frame just before frames[:, 0]; frames[:, 0] itself at a clip's start")]
                         if uses_prev else []),
        [features_spec], encoder_inputs,
        lambda *inputs: (model.encode_frames(*inputs),),
        doc="frames -> features; normalisation (mean/std) and frame differences happen inside")
    temporal_outputs = [
        TensorSpec("logits", ["batch", classes], "float32",
                   "clip logits; probabilities = softmax(logits / temperature)"),
        TensorSpec("step_logits", ["batch", "time", classes], "float32",
                   "per-step logits (bidirectional); 0 on padding"),
        TensorSpec("attention", ["batch", "time"], "float32",
                   "attention weight of each step; sums to 1, 0 on padding"),
    ]
    if model.causal is not None:
        temporal_outputs.append(TensorSpec("causal_step_logits", ["batch", "time", classes], "float32",
                                           "per-step logits seeing only earlier frames; 0 on padding"))
    temporal = Part(
        "temporal", TemporalGraph(graph_model, custom_lstm=custom_lstm),
        [features_spec, TensorSpec("lengths", ["batch"], "int64", "real steps of each clip, in [1, time]")],
        temporal_outputs, temporal_inputs,
        lambda feats, lengths: tuple(o for o in model.forward_features(feats, lengths) if o is not None),
        doc="features of padded clips + their lengths -> clip logits, per-step logits, attention")
    parts = [encoder, temporal]
    if cfg.clip_head == "stats":  # streams as `vidlstm stream` does: through the read-out, not a causal head
        parts.append(stats_stream_part(model, graph_model, features_spec))
    elif model.causal is not None:
        state_specs = [TensorSpec(n, [layers, "batch", hidden], "float32", f"causal LSTM {n} state; zeros to start")
                       for n in ("h", "c")]
        parts.append(Part(
            "stream", StreamStepGraph(graph_model), [features_spec, *state_specs],
            [TensorSpec("step_logits", ["batch", "time", classes], "float32", "causal per-step logits of this chunk"),
             *[TensorSpec(f"{s.name}_next", s.shape, "float32", "state to pass with the next chunk")
               for s in state_specs]],
            stream_inputs, lambda feats, h, c: _flatten_stream(model.stream_step(feats, (h, c))),
            doc="one chunk of features + LSTM state -> causal per-step logits + next state (constant cost per frame)"))
    return parts


def stats_stream_part(model: LRCN, graph_model: LRCN, features_spec: TensorSpec) -> Part:
    """The streaming graph of a model whose clip logits are its statistics read-out (``LRCN.stats_stream``)."""
    width, dim, classes = model.config.num_frames, model.feature_dim, model.config.num_classes
    state_specs = [
        TensorSpec("window", ["batch", width, dim], "float32",
                   f"the last {width} features before this chunk, right-aligned; zeros to start"),
        TensorSpec("filled", ["batch"], "int64", f"how many of window's last rows are real, 0 to {width}; 0 to start"),
        *[TensorSpec(n, ["batch", dim], "float64", f"running {what} of every step so far; zeros to start")
          for n, what in (("total", "sum"), ("squares", "sum of squares"),
                          ("change", "sum of absolute changes from one step to the next"))],
        TensorSpec("count", ["batch"], "int64", "steps so far; 0 to start"),
    ]

    def stream_inputs(batch, time, gen):
        """A chunk, and the state after a random number of earlier steps (none, fewer than the window, more)."""
        state = [torch.zeros(batch, width, dim), torch.zeros(batch, dtype=torch.int64),
                 *[torch.zeros(batch, dim, dtype=torch.float64) for _ in range(3)], torch.zeros(batch, dtype=torch.int64)]
        for b, before in enumerate(torch.randint(0, width + 3, (batch,), generator=gen).tolist()):
            earlier = torch.randn(before, dim, generator=gen)  # (n, D)
            kept = min(before, width)
            if kept:
                state[0][b, width - kept:] = earlier[before - kept:]
            state[1][b], state[5][b] = kept, before
            state[2][b], state[3][b] = earlier.double().sum(0), (earlier.double() ** 2).sum(0)
            state[4][b] = (earlier[1:] - earlier[:-1]).double().abs().sum(0)
        return (torch.randn(batch, time, dim, generator=gen), *state)

    return Part(
        "stream", graph_model.stats_stream(), [features_spec, *state_specs],
        [TensorSpec("step_logits", ["batch", "time", classes], "float32",
                    f"each step's read-out of the last {width} steps up to it (fewer at the start)"),
         TensorSpec("logits", ["batch", classes], "float32",
                    "read-out of every step so far: the whole stream's label, as classify gives it"),
         *[TensorSpec(f"{s.name}_next", s.shape, s.dtype, "state to pass with the next chunk") for s in state_specs]],
        stream_inputs, lambda *inputs: stats_stream_reference(model, *inputs),
        doc="one chunk of features + running statistics -> per-step and whole-stream read-out + next state "
            "(constant cost per frame)")


def stats_stream_reference(model: LRCN, features, window, filled, total, squares, change, count) -> tuple:
    """The stream graph's outputs for the same state, computed step by step from the model's own clip read-out.

    Each step's logits are the model's statistics read-out (``ClipStatistics`` + its classifier) of the clip
    made of the last ``W`` steps up to it, as ``classify`` would score that clip; the whole stream's logits come
    from the running sums, updated one step at a time. Nothing here shares code with ``StatsStream``'s
    cumulative sums, which is what the check is for.
    """
    width, steps = window.shape[1], features.shape[1]
    outputs = []
    for b in range(features.shape[0]):
        kept = int(filled[b])
        history = torch.cat([window[b, width - kept:], features[b]])  # (kept + t, D)
        step_logits = []
        for i in range(kept, kept + steps):
            clip = history[max(0, i + 1 - width):i + 1][None]  # (1, w, D): the last W steps up to this one
            step_logits.append(model.stats_classifier(model.clip_stats(clip, torch.ones(clip.shape[:2],
                                                                                          dtype=torch.bool)))[0])
        seen, sums, sq, moves = int(count[b]), total[b].clone(), squares[b].clone(), change[b].clone()
        previous = window[b, -1].double() if seen else None
        for feat in features[b].double():  # (D,)
            if previous is not None:
                moves += (feat - previous).abs()
            sums, sq, seen, previous = sums + feat, sq + feat * feat, seen + 1, feat
        mean = sums / seen
        spread = (sq / seen - mean * mean).clamp_min(0.0).sqrt()
        raw = torch.cat([mean, spread, moves / max(seen - 1, 1)])[None].to(model.clip_stats.center.dtype)
        whole = model.stats_classifier(model.clip_stats.standardize(raw))[0]  # (C,)
        outputs.append((torch.stack(step_logits), whole, sums, sq, moves))
    step_logits, logits, totals, sq, moves = (torch.stack(column) for column in zip(*outputs))
    return (step_logits, logits, torch.cat([window, features], 1)[:, steps:],
            (filled + steps).clamp_max(width), totals, sq, moves, count + steps)


def _flatten_stream(result) -> tuple:
    step_logits, (h, c) = result
    return step_logits, h, c


def export_program(part: Part) -> torch.export.ExportedProgram:
    """torch.export of one part with dynamic batch and time."""
    example = part.make_inputs(EXAMPLE_SIZES["batch"], EXAMPLE_SIZES["time"], torch.Generator().manual_seed(0))
    for param in part.module.parameters():  # an inference graph: its outputs carry no autograd history when run
        param.requires_grad_(False)
    with torch.no_grad():
        return torch.export.export(part.module, example, dynamic_shapes=dynamic_shapes([s.shape for s in part.inputs]),
                                   strict=False)


def run(config: ExportConfig) -> Path:
    """Export the model folder; return the path of the JSON description. A bad -o fails before any work; a second
    export into the same -o (its card) while this one runs is refused."""
    with held_outputs(config.out, config.format, PART_NAMES) as (files, card):
        return _export(config, files, card)


def _export(config: ExportConfig, files: dict[str, Path], card: Path) -> Path:
    if config.format == "onnx":
        _require_onnx()
    model = load_model(config.model_dir).float().eval()
    unfinished = unfinished_note(config.model_dir)
    if unfinished:  # classify says so too; the export's card keeps it for whoever runs the files
        logger.warning(f"{config.model_dir}: a model {unfinished}")
    partner = partner_left_out(config.model_dir, model.config)  # {} or the card's "partner" entry, warned of
    parts = build_parts(model, custom_lstm=config.format == "torch")
    temporary = temporary_files(config.out, {p.name: files[p.name] for p in parts})  # removed on failure or Ctrl-C
    try:
        for part in parts:
            if config.format == "onnx":
                save_onnx(part, temporary[part.name])
            else:
                torch.export.save(export_program(part), temporary[part.name])
            if config.verify:
                part.verified_max_abs_diff = verify_part(part, temporary[part.name], config.format)
    except BaseException as err:
        for path in temporary.values():
            path.unlink(missing_ok=True)
        if not isinstance(err, Exception) or isinstance(err, VidlstmError):
            raise
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:  # a full disk: the -o's fault, not the model's
            raise VidlstmError(f"{config.out}: cannot write there ({err.strerror}); nothing was written") from err
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise VidlstmError(f"{config.model_dir}: its {part.name} graph could not be exported as {config.format} "
                           f"({type(err).__name__}: {first}); nothing was written") from err
    put_in_place(temporary, files, card, json.dumps({**describe_export(model, parts, files, config, unfinished),
                                                     **partner}, indent=2) + "\n")
    return card


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError("ONNX export needs the 'export' extra (onnx is missing): "
                         "pip install 'vidlstm[export]'") from None


def save_onnx(part: Part, path: Path) -> None:
    """ONNX via the TorchScript-based exporter (``dynamo=False``): it maps nn.LSTM to ONNX's LSTM operator,
    keeping the time axis dynamic, which the torch.export-based exporter cannot yet (see export_graphs)."""
    import warnings

    example = part.make_inputs(EXAMPLE_SIZES["batch"], EXAMPLE_SIZES["time"], torch.Generator().manual_seed(0))
    axes = {spec.name: {axis: name for axis, name in enumerate(spec.shape) if isinstance(name, str)}
            for spec in [*part.inputs, *part.outputs]}
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter warns that it is deprecated and that traced shapes may be constants; the
        # check on other batch sizes and lengths after writing is what guards against the latter.
        warnings.simplefilter("ignore")
        torch.onnx.export(part.module, example, str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=[s.name for s in part.inputs], output_names=[s.name for s in part.outputs],
                          dynamic_axes=axes, do_constant_folding=True)


def load_runner(path: Path, fmt: str) -> Callable[..., tuple]:
    """A callable running an exported file on torch tensors and returning a tuple of torch tensors."""
    if fmt == "torch":
        module = torch.export.load(path).module()

        def run_program(*inputs):
            outputs = module(*inputs)
            return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)

        return run_program
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError("checking the ONNX files needs onnxruntime: pip install 'vidlstm[export]' "
                         "(or skip the check with --no-verify)") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # share the cores as torch does
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run_onnx(*inputs):
        outputs = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
        return tuple(torch.from_numpy(o) for o in outputs)

    return run_onnx


def verify_part(part: Part, path: Path, fmt: str) -> float:
    """Max |exported - PyTorch| over the outputs on CHECK_SIZES; VidlstmError above the tolerance."""
    runner = load_runner(path, fmt)
    worst = 0.0
    gen = torch.Generator().manual_seed(1)
    for sizes in CHECK_SIZES:
        inputs = part.make_inputs(sizes["batch"], sizes["time"], gen)
        with torch.no_grad():
            expected = part.reference(*inputs)
            got = runner(*inputs)
        for spec, want, have in zip(part.outputs, expected, got):
            if tuple(have.shape) != tuple(want.shape):
                raise VidlstmError(f"{path}: output {spec.name} has shape {tuple(have.shape)}, "
                                   f"PyTorch gives {tuple(want.shape)} (batch {sizes['batch']}, time {sizes['time']})")
            diff = (have.float() - want.float()).abs()
            if bool((diff > ATOL + RTOL * want.float().abs()).any()):
                raise VidlstmError(f"{path}: output {spec.name} differs from PyTorch by up to {float(diff.max()):.3g} "
                                   f"(tolerance {ATOL:g} + {RTOL:g} * |value|)")
            worst = max(worst, float(diff.max()))
    return worst


def describe_export(model: LRCN, parts: list[Part], files: dict[str, Path], config: ExportConfig,
                    unfinished: str | None = None) -> dict:
    """The JSON card: enough to run the exported files without vidlstm (``unfinished``: ``unfinished_note``'s)."""
    from vidlstm.defaults import VERSION as __version__

    cfg = model.config
    return {
        "vidlstm_version": __version__,
        "format": config.format,
        "source_model": str(Path(config.model_dir).resolve()),
        **({"unfinished": unfinished} if unfinished else {}),
        "labels": list(cfg.labels),
        "temperature": cfg.temperature,
        "preprocessing": {
            "decode": f"sample {cfg.num_frames} frames per clip ({cfg.sampling} sampling"
                      + (f": the centre frame of each of {cfg.num_frames} equal segments" if cfg.sampling == "segment"
                         else "") + "), or consecutive frames at a fixed rate when streaming",
            "resize": f"{cfg.image_size}x{cfg.image_size}, no crop: bilinear, as FFmpeg's swscale (PyAV, vidlstm's "
                      f"first decoder) resizes; its OpenCV fallback and frames handed to the Python API use area "
                      f"interpolation (cv2.INTER_AREA), which the model also takes",
            "color": "RGB (not BGR)",
            "layout": "(batch, time, 3, height, width) float32 in [0, 1] (uint8 / 255)",
            "normalization": {"mean": list(cfg.mean), "std": list(cfg.std),
                              "note": "applied inside the encoder: do not normalise yourself"},
            "input_mode": cfg.input_mode,
            **({"stabilize": "undo the camera's pan before the encoder, as vidlstm.data.stabilize.stabilize does to "
                             "each clip (StreamStabilizer when streaming): the model was trained on stabilized clips, "
                             "and the graphs do not stabilize"} if cfg.stabilize else {}),
            **({"test_views": f"vidlstm scores {cfg.test_views} clips of each video, each shifted inside the "
                              f"segments by (k + 0.5) / {cfg.test_views} of a segment, and averages their "
                              f"probabilities (one clip of segment centres also works, a little less well)"}
               if cfg.test_views > 1 else {}),
        },
        "postprocessing": "probabilities = softmax(logits / temperature)",
        "load": LOAD_HINTS[config.format],
        "pipeline": ("encoder(frames, and prev_frame where its inputs name one: at a clip's start its first frame) "
                     "-> features; temporal(features, lengths) -> logits "
                     "(pad clips of different lengths with anything and pass their lengths); streaming: "
                     "encoder on each chunk (prev_frame = last frame of the previous chunk), then "
                     + ("stream(features, window, filled, total, squares, change, count) with zeros at the start, "
                        "passing each *_next output back in with the next chunk"
                        if cfg.clip_head == "stats" else "stream(features, h, c) with zero h, c at the start")),
        "parts": {p.name: {"file": files[p.name].name, "doc": p.doc,
                           "inputs": [s.as_dict() for s in p.inputs],
                           "outputs": [s.as_dict() for s in p.outputs],
                           "verified_max_abs_diff": p.verified_max_abs_diff} for p in parts},
        "verified_on": list(CHECK_SIZES) if config.verify else [],
        "tolerance": {"atol": ATOL, "rtol": RTOL},
    }
