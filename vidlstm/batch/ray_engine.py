"""`vidlstm predict --engine ray`: Ray Data spreads the file list over actors that each load the model once.

Each actor sets its torch threads from the CPUs Ray gives it and decodes in a worker process of its own
(vidlstm.batch.pool.DecodePool), so a decoder that crashes or hangs costs one file an error record, not the
actor. An actor that dies anyway is restarted by Ray Data and its batch retried: no file is lost. Actors
return one row per file as plain columns; the driver turns rows back into the local engine's records and
writes them with the same record file, so runs resume and `vidlstm merge` takes their output.
Ray is imported only here, and only when asked for.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Iterator

from vidlstm.batch.engine import EngineOptions, predict_records
from vidlstm.errors import UsageError
from vidlstm.inference import error_record

RAY_MISSING = "--engine ray needs Ray, which is not installed: pip install 'vidlstm[ray]' (ray[data]>=2.40)"
ERROR_FIELDS = tuple(error_record("", "", 0.0))
OK_FIELDS = ("path", "status", "label", "score", "top_k", "frames", "decoder", "seconds", "duration_covered",
             "duration", "sampling")
FILES_PER_CALL_PER_FORWARD_BATCH = 2  # an actor call takes 2 forward batches of files: decode overlaps the CNN


def import_ray():
    """The ``ray`` module with Ray Data, or a UsageError (exit 2) that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


def connect(address: str | None = None):
    """``ray``, connected: to ``address`` if given, else to the cluster this process already joined, else a new
    local one (the machine's CPUs)."""
    from vidlstm.errors import UsageError

    ray = import_ray()
    if not ray.is_initialized():
        if address and address != "auto":
            _check_reachable(address)  # ray.init retries an address where nothing listens for minutes
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as err:
            reason = " ".join(str(err).split())[:200]
            raise UsageError(f"--address {address}: cannot join a Ray cluster ({reason})") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A UsageError where nothing accepts a connection at ``address`` (``HOST:PORT``, ``ray://HOST:PORT``)."""
    import socket

    from vidlstm.errors import UsageError

    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address}: expected HOST:PORT (the head node's, e.g. 10.0.0.5:6379) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise UsageError(f"--address {address}: no Ray cluster answers there ({err.strerror or err}); start one "
                         f"with `ray start --head` on that machine") from None


def default_actors(cpus_per_actor: float = 1.0) -> int:
    """One actor per ``cpus_per_actor`` CPUs of the connected cluster."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor))


class PredictActor:
    """One model replica with one decode worker; called with a batch of paths, returns their records as columns."""

    def __init__(self, model_dir, device: str, options: dict, min_score: float = 0.0, explain_dir=None):
        import ray
        import torch

        from vidlstm.batch.pool import DecodePool
        from vidlstm.inference import Predictor, make_annotator

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        torch.set_num_threads(max(1, int(cpus)))  # the CPUs Ray reserved for this actor, never more
        self.predictor = Predictor.from_dir(model_dir, device=device)
        self.predictor.fold_batch_norm()
        self.options = EngineOptions(**options)
        self.annotate = make_annotator(self.predictor, min_score, explain_dir)
        self.pool = DecodePool(1, self.options.timeout).start()

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        records = list(predict_records(self.predictor, paths, self.options, annotate=self.annotate, source=self.pool))
        return records_to_columns(records)

    def __del__(self):
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()


def records_to_columns(records: list[dict]) -> dict[str, list]:
    """Records -> {field: [value per record]}: every field of any record, None where a record lacks it."""
    fields = list(dict.fromkeys(key for record in records for key in record))
    return {key: [record.get(key) for record in records] for key in fields}


def row_to_record(row: dict) -> dict:
    """A row of the actors' output -> the record the local engine writes for that file (same fields, same order)."""
    row = {key: _plain(value) for key, value in row.items()}
    if row.get("status") != "ok":
        return {key: row.get(key) for key in ERROR_FIELDS}
    record = {key: row[key] for key in OK_FIELDS if row.get(key) is not None}
    record.update({key: value for key, value in row.items() if key not in record and value is not None})
    return record


def _plain(value):
    """Arrow/numpy values as the JSON types the local engine writes (lists, dicts, float, int, str)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def ray_records(paths, options: EngineOptions, *, model_dir, device: str = "cpu", min_score: float = 0.0,
                explain_dir=None, address: str | None = None, actors: int | None = None,
                cpus_per_actor: float = 1.0, actor_cls=None) -> Iterator[dict]:
    """Yield one record per path, in completion order, computed on a Ray cluster.

    ``address``: an existing cluster ("auto", "HOST:PORT", "ray://..."); None joins the cluster this process
    is already connected to, else starts a local one. ``actors``: model replicas (default: one per
    ``cpus_per_actor`` CPUs of the cluster). ``actor_cls``: a PredictActor subclass (tests inject faults).
    """
    ray = connect(address)
    paths = [str(p) for p in paths]
    if not paths:
        return
    actors = max(1, min(actors or default_actors(cpus_per_actor), len(paths)))
    files_per_call = max(1, options.batch_size * FILES_PER_CALL_PER_FORWARD_BATCH)
    options = dataclasses.replace(options, workers=1)  # one decode worker per actor
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-stage INFO lines would flood -q's stdout
    dataset = ray.data.from_items([{"path": p} for p in paths])
    dataset = dataset.map_batches(
        actor_cls or PredictActor, batch_size=files_per_call, batch_format="numpy", num_cpus=cpus_per_actor,
        compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs={"model_dir": str(model_dir) if model_dir else None, "device": device,
                               "options": dataclasses.asdict(options), "min_score": min_score,
                               "explain_dir": str(explain_dir) if explain_dir else None})
    for row in dataset.iter_rows():
        yield row_to_record(row)
