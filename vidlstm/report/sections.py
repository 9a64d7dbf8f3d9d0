"""The sections of a report page, one builder per source kind: training run, evaluation, predictions."""
from __future__ import annotations

from collections import Counter

import numpy as np

from vidlstm.report.explanations import ExplanationIndex, explanation_figures
from vidlstm.report.html import Markup, absent, bar, esc, heading, image, key_value_table, paragraph, table
from vidlstm.report.sources import Evaluation, Predictions, TrainingRun

Section = tuple[str, str, list]  # (anchor, title, parts)


def _number(text):
    """A CSV cell as a number where it is one (so tables align and format it), else the text."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in str(text) else value


def _scalars(data: dict, prefix: str = "", depth: int = 4) -> dict:
    """The plain values of a metrics dict, one line each: a nested dict's as ``outer.inner`` (four levels deep), a
    short list of plain values joined; a longer list, or anything deeper, becomes a count."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 0 and value:
            out.update(_scalars(value, f"{name}.", depth - 1))
        elif isinstance(value, list) and len(value) <= 8 and all(not isinstance(v, (list, dict)) for v in value):
            out[name] = ", ".join(map(str, value))
        elif isinstance(value, (list, dict)):
            out[name] = f"{len(value)} item(s)"
        else:
            out[name] = value
    return out


def _split_line(split: dict, metrics: dict) -> str:
    """The split in one line: split.json lists every clip it sent each way, decodable or not, so where the model's
    metrics counted fewer (files it skipped as undecodable) the clips it trained and validated on are said too."""
    listed = (len(split.get("train", [])), len(split.get("val", [])))
    line = (f"split: {listed[0]} training and {listed[1]} validation clips "
            f"(seed {split.get('seed')}, validation fraction {split.get('val_fraction')})")
    used = (metrics.get("train_clips"), metrics.get("val_clips"))
    if all(isinstance(n, int) for n in used) and sum(used) < sum(listed):
        undecodable = sum(listed) - sum(used)
        line += (f"; {undecodable} of them could not be decoded, so {used[0]} clips trained the model and {used[1]} "
                 f"validated it")
        skipped = metrics.get("skipped_files")
        if isinstance(skipped, list) and len(skipped) > undecodable:  # empty files never reach the split
            line += f" ({len(skipped)} files skipped in all: the others before the split, empty ones and the like)"
    return line


def _choice_table(choice: dict) -> list:
    """What `train --backbone auto` tried and kept (choice.json): each candidate's estimate, the rule and its clause
    that kept the model."""
    rows = []
    for family, result in (choice.get("candidates") or {}).items():
        if not isinstance(result, dict):
            continue
        accuracy = result.get("accuracy")
        estimate = result.get("skipped") and f"not trained: {result['skipped']}" or \
            (f"{result.get('estimate')} over {result.get('clips')} clips" if accuracy is not None else "no estimate")
        rows.append([family + (" (kept)" if family == choice.get("chosen") else ""), result.get("backbone"),
                     accuracy, estimate, result.get("run_seconds")])
    parts = [table(["candidate", "backbone", "accuracy estimate", "estimated how", "seconds"], rows)]
    if choice.get("warning"):
        parts.append(paragraph(f"warning: {choice['warning']}"))
    if choice.get("rule"):
        parts.append(paragraph(f"rule: {choice['rule']}"))
    if choice.get("clause"):
        parts.append(paragraph(f"kept by: {choice['clause']}"))
    return parts


def _missing_parts(missing: list[str]) -> list[Markup]:
    return [absent("absent: " + item) for item in missing]


def status_counts(statuses: list[str]) -> Markup:
    counts = Counter(s or "unknown" for s in statuses)
    shown = [("ok", counts.pop("ok", 0)), ("error", counts.pop("error", 0)), *sorted(counts.items())]
    spans = "".join(f"<span><b>{esc(n)}</b> {esc(name)}</span>" for name, n in shown)
    return Markup(f'<p class="counts"><span><b>{len(statuses)}</b> files</span>{spans}</p>')


def distribution_table(counts: Counter, title: str) -> Markup:
    """Label -> count with a bar and a share, most frequent first."""
    total = sum(counts.values())
    if not total:
        return paragraph(f"{title}: no labels")
    rows = [[label, n, f"{100 * n / total:.1f}%", bar(n / max(counts.values()))]
            for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return Markup(heading(title) + table(["label", "files", "share", ""], rows))


def _per_class_table(rows: list[dict]) -> Markup:
    """Support, precision, recall, F1 and accuracy per true label, from decoded evaluate rows."""
    from sklearn.metrics import precision_recall_fscore_support  # seconds to import: only reports that need it

    ok = [r for r in rows if r.get("status") == "ok" and r.get("predicted")]
    if not ok:
        return absent("per-class results: no decoded file with a prediction")
    truth = [r.get("label") or "" for r in ok]
    pred = [r.get("predicted") or "" for r in ok]
    labels = sorted(set(truth) | set(pred))
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    predicted = Counter(pred)
    table_rows = [[label, int(support[i]), predicted[label], float(precision[i]), float(recall[i]), float(f1[i])]
                  for i, label in enumerate(labels)]
    return table(["class", "true clips", "predicted as", "precision", "recall (class accuracy)", "F1"], table_rows)


def _file_rows(rows: list[dict], columns: list[str], limit: int) -> Markup:
    """The files table, errors first (they are what a reader looks for), capped at ``limit`` rows."""
    ordered = sorted(rows, key=lambda r: r.get("status") == "ok")
    shown = ordered[:limit]
    body = [[_number(r.get(c)) if c in ("score", "frames", "seconds", "correct") else r.get(c) for c in columns]
            for r in shown]
    classes = ["error" if r.get("status") not in ("ok", None) else "" for r in shown]
    note = paragraph(f"showing {limit} of {len(rows)} files (errors first)") if len(rows) > limit else Markup("")
    return Markup(note + table(columns, body, classes, path_columns=(0, columns.index("error"))))


def evaluation_sections(ev: Evaluation, index: ExplanationIndex, max_rows: int, max_strips: int,
                        prefix: str = "eval", title: str = "evaluation") -> list[Section]:
    metrics = [paragraph(f"folder: {ev.root}")]
    metrics += [key_value_table(_scalars(ev.metrics))] if ev.metrics else []
    metrics += _missing_parts(ev.missing)
    confusion = [image(ev.confusion_png, "confusion matrix")] if ev.confusion_png else [absent("absent: confusion matrix")]
    per_class = [_per_class_table(ev.rows)]
    if ev.report_text:
        per_class.append(Markup(f"<h3>classification_report.txt</h3><pre>{esc(ev.report_text)}</pre>"))
    files = [status_counts([r.get("status", "") for r in ev.rows])]
    files.append(distribution_table(Counter(r.get("label") for r in ev.rows if r.get("label")), "true labels"))
    files.append(distribution_table(Counter(r.get("predicted") for r in ev.rows if r.get("predicted")),
                                    "predicted labels"))
    if ev.rows:
        files.append(_file_rows(ev.rows, ["path", "label", "predicted", "score", "correct", "status", "error"], max_rows))
    return [(f"{prefix}-metrics", f"{title}: metrics", metrics),
            (f"{prefix}-confusion", f"{title}: confusion matrix", confusion),
            (f"{prefix}-classes", f"{title}: per-class results", per_class),
            (f"{prefix}-files", f"{title}: files", files),
            (f"{prefix}-explain", f"{title}: which frames mattered",
             explanation_figures(ev.rows, index, max_strips))]


def _epoch_table(epochs: list[dict]) -> Markup:
    columns = list(epochs[0].keys())
    return table(columns, [[_number(row.get(c)) for c in columns] for row in epochs])


def run_sections(run: TrainingRun, index: ExplanationIndex, max_rows: int, max_strips: int) -> list[Section]:
    alone = run.model_dir == run.root  # a model folder on its own
    overview = [paragraph(f"model folder: {run.root}" if alone else f"run folder: {run.root}; model: {run.model_dir}")]
    if run.labels:
        overview.append(paragraph(f"{len(run.labels)} classes: {', '.join(map(str, run.labels))}"))
    overview += [heading("final model (model/metrics.json)"), key_value_table(_scalars(run.model_metrics))] \
        if run.model_metrics else []
    overview += _missing_parts(run.missing)
    curves = [image(run.curves_png, "training curves")] if run.curves_png else [absent("absent: curves.png")]
    curves += [heading("per epoch (metrics.csv)"), _epoch_table(run.epochs)] if run.epochs else \
        [absent("absent: metrics.csv (per-epoch losses and accuracies)")]
    per_class = []
    counts = (run.model_metrics or {}).get("train_class_counts")
    if isinstance(counts, dict) and counts:
        per_class.append(distribution_table(Counter({str(k): int(v) for k, v in counts.items()}),
                                            "training clips per class"))
    if run.split:
        per_class.append(paragraph(_split_line(run.split, run.model_metrics or {})))
    if not run.evaluations:
        per_class.append(absent("per-class accuracy and the confusion matrix need an evaluation (see above)"))
    sections = [("run", "model" if alone else "training run", overview)]
    if run.choice:
        sections.append(("choice", "the model kept (train --backbone auto)", _choice_table(run.choice)))
    sections += [("curves", "training curves", curves), ("classes", "classes", per_class)]
    for i, ev in enumerate(run.evaluations):
        title = "evaluation" if ev.root.name == "evaluation" else f"evaluation {ev.root.name}"
        sections += evaluation_sections(ev, index, max_rows, max_strips, prefix=f"eval{i}", title=title)
    if run.config:  # long and rarely read: last
        sections.append(("settings", "settings (config.json)", [key_value_table(_scalars(run.config))]))
    return sections


def prediction_sections(preds: Predictions, index: ExplanationIndex, max_rows: int,
                        max_strips: int) -> list[Section]:
    records = preds.records
    ok = [r for r in records if r.get("status") == "ok"]
    summary = [paragraph(f"records: {preds.path}"), status_counts([r.get("status", "") for r in records])]
    scores = np.array([r["score"] for r in ok if isinstance(r.get("score"), (int, float))], dtype=np.float64)
    if len(scores):
        summary.append(key_value_table({"mean score": float(scores.mean()), "median score": float(np.median(scores)),
                                        "lowest score": float(scores.min())}))
    if preds.cut:
        summary.append(absent(f"left out: a record cut off at the end of {preds.path.name} ({preds.cut} bytes): a "
                              f"predict killed mid-write, or still writing"))
    labels = [distribution_table(Counter(r.get("label") for r in ok if r.get("label")), "predicted labels")]
    files = [_file_rows(records, ["path", "label", "score", "status", "decoder", "frames", "error"], max_rows)] \
        if records else [absent("no files")]
    return [("summary", "summary", summary), ("labels", "label distribution", labels), ("files", "files", files),
            ("explain", "which frames mattered", explanation_figures(records, index, max_strips))]
