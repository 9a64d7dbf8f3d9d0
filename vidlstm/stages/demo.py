"""The demo stage: fresh synthetic clips, classified by a model, scored against their true labels."""
from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vidlstm.data.datasets import VideoItem
from vidlstm.data.synth import MOTION_CLASSES, SynthConfig, generate_dataset
from vidlstm.defaults import default_model_dir, label_list, shipped_places
from vidlstm.errors import UsageError
from vidlstm.inference import Predictor
from vidlstm.logs import log as logger
from vidlstm.stages.classify import classify_paths
from vidlstm.training.in_sample import warn_in_sample

SHIPPED_TRAINING_SEED = 7
"""`synth_seed` of pipelines/default_model.toml: the shipped model's training clips. A seed's clips are the same
whatever --per-class (fewer are a prefix), so a demo with this seed shows the shipped model what it trained on."""


@dataclass
class DemoConfig:
    """What `vidlstm demo` generates and which model classifies it."""

    model_dir: str | None = None  # None: the shipped default model
    per_class: int = 10  # fresh clips per class (80 for the 8 motion classes)
    seed: int = 12345  # generation seed; the default model was trained on other seeds
    out_dir: str | None = None  # keep the clips here (default: a temporary folder, removed after)
    device: str | None = None


def _is_shipped(model_dir) -> bool:
    """Whether ``model_dir`` is the shipped model: its folder, or a copy (the same config and weights)."""
    from vidlstm.batch.run_settings import model_digest

    shipped = [place for place in shipped_places("weights/default", "_weights/default") if place.is_dir()]
    if Path(model_dir).resolve() in [place.resolve() for place in shipped]:
        return True
    try:
        return model_digest(Path(model_dir)) in {model_digest(place) for place in shipped}
    except OSError:
        return False


def demo_classes(labels) -> tuple[str, ...]:
    """The model's labels that are synthetic motion classes, in `vidlstm synth`'s own class order, so that a seed
    draws the clips that ``vidlstm synth --seed`` draws (the model's sorted order drew others: 95.0% here vs 98.75%
    there). Its other labels have no synthetic clips to draw (a model fine-tuned to add one is still scored on the
    motion classes)."""
    known = set(labels)
    return tuple(c for c in MOTION_CLASSES if c in known)


def run(config: DemoConfig):
    """Return (records with a 'true' label added, accuracy)."""
    predictor = Predictor.from_dir(config.model_dir, device=config.device)
    if config.seed == SHIPPED_TRAINING_SEED and _is_shipped(config.model_dir or default_model_dir()):
        logger.warning(f"--seed {config.seed} draws the shipped model's own training clips "
                       f"(pipelines/default_model.toml): the accuracy is in-sample; any other seed draws clips it "
                       f"never trained on")
    classes = demo_classes(predictor.labels)
    if not classes:
        raise UsageError(f"{config.model_dir}: its labels ({label_list(predictor.labels)}) are none of the synthetic "
                         f"motion classes the demo draws ({', '.join(MOTION_CLASSES)}); score it on labelled clips "
                         f"with `vidlstm evaluate DATA --model {config.model_dir}`")
    with tempfile.TemporaryDirectory(prefix="vidlstm-demo-") as tmp:
        root = Path(config.out_dir or tmp)
        synth = SynthConfig(per_class=config.per_class, seed=config.seed)
        generate_dataset(root, synth, classes=classes, written_by="vidlstm demo")
        with open(root / "manifest.csv") as f:
            rows = list(csv.DictReader(f))
        # A seed's clips are the same bytes whatever folder holds them: `demo --model RUN/model --seed S` drew a run's
        # own `synth --seed S` training clips (the check evaluate runs, by the run's split.json).
        trained = warn_in_sample(config.model_dir or default_model_dir(),
                                 [VideoItem(root / r["path"], r["label"]) for r in rows], "demo clips",
                                 "another --seed draws clips it never trained on")
        records = list(classify_paths(predictor, [root / r["path"] for r in rows], top_k=1))
    for rec, row in zip(records, rows):
        rec["path"] = row["path"]
        rec["true"] = row["label"]
        rec["in_sample"] = root / row["path"] in trained
    correct = sum(rec["label"] == rec["true"] for rec in records)
    return records, correct / max(1, len(records))
