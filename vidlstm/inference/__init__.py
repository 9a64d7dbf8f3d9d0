"""The inference core: a loaded model (Predictor) turns frames into scores, and scores into per-file records.

Below the batch engine and the stages: classify, predict, stream, the Python API and the Ray engine all
build on these names, and this package imports none of them.
"""
from vidlstm.inference.annotate import UNKNOWN_LABEL, make_annotator
from vidlstm.inference.predictor import ClipScores, Predictor
from vidlstm.inference.records import build_record, error_record, in_given_order, top_k_labels

__all__ = ["ClipScores", "Predictor", "UNKNOWN_LABEL", "build_record", "error_record", "in_given_order",
           "make_annotator", "top_k_labels"]
