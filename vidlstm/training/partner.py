"""vidnet beside a kept read-out, as one model: its vote breaks the read-out's near-ties.

Where `train --backbone auto` keeps the read-out (a frozen ImageNet network's statistics, logistic regression) and
vidnet was trained too, the kept model folder holds both networks (``ModelConfig.partner``). A clip's probabilities
are ``1 - PARTNER_WEIGHT`` times the read-out's plus ``PARTNER_WEIGHT`` times vidnet's, each calibrated. vidnet's
calibrated probabilities rarely pass 0.8 and the read-out's often do, so at this weight vidnet turns the answer only
where the read-out is unsure (its top score under about 0.6 on two classes). Re-scored on the held-out clips of six
saved auto runs (fight and pushfit, seeds 0-2, three folds each), the read-out's share 0.7 lost on none of them and
raised the means from 0.811 to 0.814 (fight) and 0.862 to 0.879 (pushfit); the plain average (0.5) cost fight 1.6
points (benchmarks/RESULTS.md, "vidnet's vote beside the read-out, weighted"). vidnet is served the read-out's
decoded clip (the same segment centres), resized in the model to its own size: one decode feeds both.
"""
from __future__ import annotations

from pathlib import Path

from vidlstm.checkpoint import METRICS_FILE, load_model, rewrite_metrics, save_model
from vidlstm.errors import UsageError
from vidlstm.models import LRCN, ModelConfig

PARTNER_WEIGHT = 0.3
"""vidnet's share of a clip's probabilities beside a kept read-out."""
PARTNER_RULE = (f"where the read-out is kept and vidnet was trained, vidnet joins it as its partner: a clip's "
                f"probabilities are {1 - PARTNER_WEIGHT:g} x the read-out's + {PARTNER_WEIGHT:g} x vidnet's, so vidnet "
                f"decides only where the read-out is unsure")
PREFIX = "partner."
"""Where a partner's weights sit in its model's state dict (and model.safetensors)."""


def with_partner(model: LRCN, partner: LRCN, weight: float = PARTNER_WEIGHT) -> LRCN:
    """One model of ``model`` and ``partner`` (neither with a partner of its own), in eval mode on the CPU; a
    UsageError where they cannot be joined (other labels, frames per clip, sampling or stabilizing)."""
    if model.partner is not None or partner.partner is not None:
        raise UsageError("a model with a partner cannot be joined to another")
    config = ModelConfig.from_dict({**model.config.to_dict(),
                                    "partner": {"weight": weight, "config": partner.config.to_dict()}})
    joined = LRCN(config, load_pretrained=False)
    state = {**model.state_dict(), **{PREFIX + k: v for k, v in partner.state_dict().items()}}
    joined.load_state_dict(state)
    return joined.cpu().eval()


def without_partner(model: LRCN) -> LRCN:
    """``model`` without its partner (itself where it has none): what fine-tuning trains."""
    if model.partner is None:
        return model
    settings = model.config.to_dict()
    del settings["partner"]
    alone = LRCN(ModelConfig.from_dict(settings), load_pretrained=False)
    alone.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith(PREFIX)})
    return alone.to(next(model.parameters()).device).train(model.training)


def write_kept_model(candidates_dir: Path, model_dir: Path, chosen: str, results: dict[str, dict], metrics: dict,
                     readout_families=("pretrained",), partner_family: str = "scratch") -> dict | None:
    """Write ``metrics`` (and the card) into ``model_dir``, the copy of auto's kept candidate ``chosen``; where that
    is a read-out and vidnet (``partner_family``) finished training, the folder is rewritten as the two joined, once.
    Returns the note for choice.json (also in the metrics where joined), None where the rule does not apply. A pair
    that cannot be joined is noted with the reason and the read-out stays alone."""
    model_dir = Path(model_dir)
    note = None
    partner_dir = Path(candidates_dir) / partner_family / "model"
    if chosen in readout_families and not (results.get(partner_family) or {}).get("skipped") \
            and (partner_dir / METRICS_FILE).is_file():
        try:
            joined = with_partner(load_model(model_dir), load_model(partner_dir))
        except UsageError as err:
            note = {"family": partner_family, "joined": False, "reason": str(err), "rule": PARTNER_RULE}
        else:
            note = {"family": partner_family, "joined": True, "backbone": joined.partner.config.backbone,
                    "weight": PARTNER_WEIGHT, "rule": PARTNER_RULE}
            metrics.setdefault("chosen_from_data", {})["partner"] = note
            save_model(model_dir, joined, metrics)
            return note
    rewrite_metrics(model_dir, metrics)
    return note
