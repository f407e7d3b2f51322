"""Forecast orchestration for one uploaded sample: embeddings -> zero-shot measures ->
transferability baselines -> per-method forecasts of ID gain and OOD change.

The forecast page calls one function here and shows the DataFrames of the result; nothing
in this module knows about Streamlit. ``core.embed`` (and so torch) is imported only when a
sample of images must be embedded, so the .npz route and the page's import stay light.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shlex
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from core import forecast, metrics, ranking
from core.forecast_result import OUTCOMES, ForecastResult  # re-exported: callers import them from here
from core.models import DEFAULT_MODEL, spec_for

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
MIN_DATASETS = 4  # dataset points per method a forecast needs (core.forecast's min_runs)
LEVEL = 0.95
DEFAULT_GRID = "jobs/configs/default.toml"
#: What each zero-shot measure means, for the measures table.
MEASURE_NOTES = {
    "iimm": "Inter-Intra Modal Measure: (inter_modal + intra_image) / 2",
    "inter_modal": "mean cosine of wrong image-prompt pairs (IIMM term)",
    "intra_image": "mean cosine of distinct image pairs (IIMM term)",
    "correct_pair": "mean cosine of matching image-prompt pairs",
    "modality_gap": "distance between the image and prompt centroids",
    "intra_text": "mean cosine of distinct class prompts",
    "zs_acc": "zero-shot top-1 accuracy on the sample, %",
    "silhouette_classes": "silhouette of the images by class",
    "silhouette_modality": "silhouette of images vs prompts",
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "model"


def grid_command(model: str, pretrained: str) -> str:
    """The command that produces reference runs for this model (the default grid, adapted)."""
    spec = spec_for(model, pretrained)
    if spec.key == DEFAULT_MODEL:
        return f"python -m jobs.grid {DEFAULT_GRID} --results results/default"
    slug = _slug(spec.key)
    # the key as a TOML string, then escaped for sed's replacement and quoted for the shell: a weights file's key
    # ('ViT-B-16:/data/my.pt') ended the s/// command at its '/', and a quote in it ended the shell's quoting
    toml = json.dumps(spec.key, ensure_ascii=False)
    replacement = toml.replace("\\", "\\\\").replace("&", "\\&").replace("/", "\\/")
    return (f"cp {DEFAULT_GRID} jobs/configs/{slug}.toml && "
            f"sed -i {shlex.quote(f's/^models = .*/models = [{replacement}]/')} jobs/configs/{slug}.toml && "
            f"python -m jobs.grid jobs/configs/{slug}.toml --results results/{slug}")


def softmax_probs(x: np.ndarray, t: np.ndarray, logit_scale: float, logit_bias: float = 0.0) -> np.ndarray:
    """Zero-shot class probabilities of the model's own classifier (SPEC §3):
    softmax(logit_scale * cosine(image, prompt) + logit_bias), (N, C); logit_scale = exp(parameter)."""
    from core.transferability import classifier_probs

    return classifier_probs(x, t, logit_scale=logit_scale, logit_bias=logit_bias)


def _transferability(x: np.ndarray, t: np.ndarray, y: np.ndarray, class_names: list[str], notes: list[str],
                     logit_scale: float | None, logit_bias: float) -> dict[str, float]:
    try:
        from core import transferability  # noqa: F401 (fails first when the package is missing)
        from core.transferability.label_sources import baseline_block
    except ImportError as exc:  # the module may not exist in every checkout
        notes.append(f"transferability baselines unavailable ({exc})")
        return {}
    try:
        scores, info = baseline_block(x, t, y, class_names, logit_scale=logit_scale, logit_bias=logit_bias)
    except ValueError as exc:
        notes.append(f"transferability baselines not computed: {exc}")
        return {}
    notes.append(f"Transferability baselines in the study's conventions; EMMS label embeddings from: "
                 f"{info['emms_sources']}.")
    if "leep" in info:
        notes.append("LEEP left out: the upload does not say the model's logit scale (its temperature).")
    blank = sorted(k for k, v in scores.items() if not math.isfinite(float(v)))
    if blank:  # said here: the reason (core.transferability.all_scores) went to the log alone
        notes.append(f"Transferability baselines left blank for this sample: {', '.join(blank)} "
                     f"({_blank_why(y, class_names)}).")
    return {k: float(v) for k, v in scores.items()}


def _blank_why(y: np.ndarray, class_names: list[str]) -> str:
    """Why a baseline is blank (not finite) on a sample with labels ``y``: its single-image classes, or none."""
    single = [repr(str(class_names[k])) for k in np.flatnonzero(np.bincount(y, minlength=len(class_names)) == 1)]
    if not single:
        return "not defined or not finite on these embeddings"
    return (f"{'classes' if len(single) > 1 else 'class'} {', '.join(single)} {'have' if len(single) > 1 else 'has'} "
            "a single image; a baseline that needs a class's spread (GBC) needs at least 2")


def _baseline_notes(scores: dict[str, float], y: np.ndarray, class_names: list[str], n_scored: int, n_images: int,
                    compete: bool) -> list[str]:
    """Per baseline (sorted by name), what its row must say so that a saved baselines table reads as the page's notes
    do: why it is blank, that it was scored on a subsample, that it is left out of the forecast's choice."""
    how = ([f"scored on a random {n_scored:,} of the {n_images:,} images"] if n_scored < n_images else []) + (
        [] if compete else ["left out of the forecast's choice (see the notes)"])
    return ["; ".join(([f"left blank: {_blank_why(y, class_names)}"] if not math.isfinite(v) else []) + how)
            for _, v in sorted(scores.items())]


def content_order(image: np.ndarray, labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    """The positions of a sample's rows sorted by their content: by their first 8 values, then a digest of the
    whole row (as float64, so float32 rows and their float64 copy agree), then the class's name. The forecast's
    seeded draws (IIMM's bootstrap, the baselines' and silhouettes' subsamples) follow this order, so they depend
    on which images the sample holds, not on their files' names or order (which set the rows' order) nor on the
    classes' numbering; sorted by values, not by a digest alone, an embedding a rounding off (another thread
    count, another machine) moves its row only past rows as close to it. ``image`` (N, d) and ``labels`` (N,) in
    0..C-1 (C = len(class_names)), or ValueError as ``core.metrics`` raises it."""
    x = metrics.check_matrix(image, "image_embeddings")
    labels = metrics.check_labels(labels, x.shape[0])  # a label past the names was an IndexError, -1 the last name
    if labels.size and labels.max() >= len(class_names):
        raise ValueError(f"labels out of range: max label {labels.max()} but only {len(class_names)} class names")
    digests = bytearray()
    for s in range(0, len(x), 1024):
        block = np.ascontiguousarray(x[s:s + 1024], dtype=np.float64) + 0.0  # -0.0 reads as 0.0
        for row in block:
            digests += hashlib.blake2b(row.tobytes(), digest_size=8).digest()
    rank = {name: k for k, name in enumerate(sorted(str(c) for c in class_names))}
    names = np.array([rank[str(c)] for c in class_names], dtype=np.int64)[labels]
    columns = [x[:, j] for j in range(min(8, x.shape[1]))]
    # np.lexsort: the last key first
    return np.lexsort([names, np.frombuffer(bytes(digests), dtype=">u8"), *columns[::-1]]).astype(np.int64)


def baseline_rows(runs_df: pd.DataFrame, model: str, pretrained: str, n_images: int, *,
                  seed: int = 0, order: np.ndarray | None = None) -> tuple[np.ndarray | None, str | None]:
    """Which of a sample's ``n_images`` rows to score the transferability baselines on so that they compare
    with the reference datasets' (scored on their whole train splits), and a note for the page.

    Baselines depend on how many images they are computed from (EMMS, LogME, H-score, TransRate and NCTI
    grow or shrink with it); the zero-shot measures are means over images or image pairs and do not. So
    where every reference dataset of ``model``/``pretrained`` has a train split of one known size S
    (``core.data.registry.train_size``) and the sample has at least S images, the baselines are scored on
    a seeded random S of them (drawn as positions in ``order``, a permutation of the rows: :func:`content_order`
    makes the choice depend on the images, not on their order); where the sizes differ or are unknown, or the
    sample is smaller than S, the rows are None: the baselines are shown (scored on the whole sample) but do not
    compete in the forecast's choice of predictors. With no ok reference runs of ``model``/``pretrained`` (so no forecast either) the
    rows are every row, ``np.arange(n_images)``, and there is no note.
    """
    from core.data.registry import train_size

    needed = {"model", "pretrained", "status", "dataset"}
    if runs_df.empty or not needed <= set(runs_df.columns):
        return np.arange(n_images), None  # no reference runs: nothing to compare with, no forecast either
    mine = runs_df[(runs_df["model"] == model) & (runs_df["pretrained"] == pretrained) & (runs_df["status"] == "ok")]
    sizes = {train_size(str(d)) for d in mine["dataset"].unique()}
    if not sizes:
        return np.arange(n_images), None
    left_out = ("Transferability baselines are shown but left out of the forecast's choice of predictors: "
                "their values depend on how many images they are computed from, and ")
    chosen_from = " The forecast chooses among the zero-shot measures (IIMM, its terms, zero-shot accuracy...)."
    if None in sizes or len(sizes) > 1:
        return None, (left_out + "the reference datasets' train splits are not known to have one size."
                      + chosen_from)
    (size,) = sizes
    if n_images < size:
        return None, (left_out + f"your sample has {n_images:,} images where the reference datasets' train "
                      f"splits have {size:,}." + chosen_from)
    drawn = np.random.default_rng(seed).permutation(n_images)[:size]
    rows = np.sort(drawn if order is None else metrics.check_order(order, n_images)[drawn])
    note = (None if n_images == size else f"Transferability baselines were computed on a random {size:,} of "
            f"your {n_images:,} images, the size of the reference datasets' train splits they are compared with.")
    return rows, note


def _wide(raw: pd.DataFrame) -> pd.DataFrame:
    """forecast_methods' long frame -> one row per method, the outcomes side by side; ``n_datasets`` is the
    fewest reference datasets any of the method's outcome forecasts rests on."""
    cols = ["method"]
    for o in OUTCOMES:
        cols += [f"{o}", f"{o}_lo", f"{o}_hi", f"{o}_lodo_mae", f"{o}_r2", f"{o}_tau"]
    cols += ["n_datasets", "extrapolation", "status"]
    rows = []
    for method, group in raw.groupby("method", sort=True):
        row: dict[str, Any] = {"method": method}
        statuses = []
        for o in OUTCOMES:
            g = group[group["outcome"] == o]
            if g.empty:
                continue
            r = g.iloc[0]
            # the fewest reference datasets behind any of its forecasts (was: the last outcome's, so a gain
            # forecast on 4 datasets read "5" when the OOD one had 5)
            row["n_datasets"] = min(int(r["n_datasets"]), row.get("n_datasets", int(r["n_datasets"])))
            statuses.append(r["status"] if r["status"] == "ok" else f"{o}: {r['status']}")
            if r["status"] == "ok":
                row.update({o: r["prediction"], f"{o}_lo": r["lo"], f"{o}_hi": r["hi"],
                            f"{o}_lodo_mae": r["lodo_mae"], f"{o}_r2": r["r2"],
                            f"{o}_tau": r["kendall_tau"]})
                row["extrapolation"] = bool(row.get("extrapolation", False) or r["extrapolation"])
        ok = all(s == "ok" for s in statuses)
        row["status"] = "ok" if ok else "; ".join(s for s in statuses if s != "ok")
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def forecast_for_embeddings(image: np.ndarray, text: np.ndarray, labels: np.ndarray,
                            class_names: list[str], runs_df: pd.DataFrame, *, model: str,
                            pretrained: str, model_label: str, random_weights: bool,
                            n_boot: int = 200, seed: int = 0, level: float = LEVEL,
                            min_datasets: int = MIN_DATASETS, logit_scale: float | None = None,
                            logit_bias: float = 0.0,
                            timings: dict[str, float] | None = None) -> ForecastResult:
    """Score one sample's embeddings and forecast every method's outcomes from the stored runs.

    image (N, d), text (C, d), labels (N,) in 0..C-1, class_names (C). ``model``/``pretrained``
    select the reference runs (as stored in records: open_clip architecture and tag).
    ``logit_scale``/``logit_bias``: the model's zero-shot classifier (exp(logit_scale)), for LEEP;
    None leaves LEEP out.
    Raises ValueError (from core.metrics) when the arrays are malformed.
    """
    # was core.forecast's "min_runs must be at least 3", a name the caller never used, after the measures
    metrics.check_count(min_datasets, "min_datasets", minimum=3, why="an interval needs 3 datasets")
    if np.asarray(text).ndim != 2:
        raise ValueError(f"text_embeddings must be 2-D (classes x width), got shape {np.asarray(text).shape}")
    if len(class_names) != np.asarray(text).shape[0]:
        raise ValueError(f"class_names has {len(class_names)} names for {np.asarray(text).shape[0]} "
                         "text embeddings")
    timings = dict(timings or {})
    notes: list[str] = []
    t0 = time.perf_counter()
    image, text, labels = metrics.check_inputs(image, text, labels)
    order = content_order(image, labels, class_names)  # the seeded draws follow the images, not their files' order
    zs = {k: float(v) for k, v in metrics.zero_shot_scores(image, text, labels, order=order).items()}
    lo, hi = metrics.bootstrap_iimm(image, text, labels, n_boot=n_boot, seed=seed, level=level, order=order)
    timings["zero_shot_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # The reference runs' baselines were scored on L2-normalised rows (core.embed); an .npz upload may
    # hold raw rows, and GBC, TransRate, NCTI, EMMS... are not scale-invariant. IIMM normalises itself.
    n_images = int(np.asarray(image).shape[0])
    rows, why = baseline_rows(runs_df, model, pretrained, n_images, seed=seed, order=order)
    scored = rows if rows is not None else np.arange(n_images)
    tf = _transferability(metrics.unit_rows(np.asarray(image)[scored], "image_embeddings"),
                          metrics.unit_rows(np.asarray(text), "text_embeddings"), np.asarray(labels)[scored],
                          list(class_names), notes, logit_scale, logit_bias)
    if why:
        notes.append(why)
    timings["transferability_s"] = time.perf_counter() - t0

    measures = pd.DataFrame([{"measure": k, "value": v, "lo": lo if k == "iimm" else np.nan,
                              "hi": hi if k == "iimm" else np.nan, "note": MEASURE_NOTES.get(k, "")}
                             for k, v in zs.items()])
    baselines = pd.DataFrame(sorted(tf.items()), columns=["baseline", "score"]).assign(note=_baseline_notes(
        tf, np.asarray(labels)[scored], list(class_names), len(scored), n_images, rows is not None))

    t0 = time.perf_counter()
    if not math.isfinite(zs["iimm"]):
        raise ValueError("IIMM is not finite for this sample; check the embeddings")
    raw = forecast.forecast_methods(runs_df, {"iimm": zs["iimm"]}, model=model, pretrained=pretrained,
                                    outcomes=tuple(OUTCOMES), predictor="iimm",
                                    min_runs=min_datasets, level=level)
    # a baseline (zero-shot: outcomes 0 by definition) is no method to forecast, as on the ranking: its rows
    # made a store of zero-shot runs alone count as "enough runs" and named it the best-covered method
    raw = ranking.without_baselines(raw).reset_index(drop=True)
    selected = pd.DataFrame()
    if not raw.empty and (raw["status"] == "ok").any():
        from core.forecast_select import forecast_new

        values = {**(tf if rows is not None else {}), **zs}  # baselines compete only at the references' size
        selected = forecast_new(runs_df, values, model=model, pretrained=pretrained, outcomes=tuple(OUTCOMES),
                                level=level, min_datasets=max(min_datasets, 6), coverage=False)
    timings["forecast_s"] = time.perf_counter() - t0
    enough = bool((raw["status"] == "ok").any()) if not raw.empty else False
    message = command = None
    name = f"{model} ({pretrained})"
    if not enough:
        command = grid_command(model, pretrained)
        if raw.empty:
            message = (f"No reference runs for {name} in the result store, so no forecast can be made. "
                       f"A forecast needs fine-tuning runs of this model on at least {min_datasets} "
                       "datasets per method; the command below produces them.")
        else:
            most = int(raw["n_datasets"].max())
            message = (f"Too few reference runs for {name}: the best-covered method has runs on "
                       f"{most} dataset(s), a forecast needs {min_datasets}. "
                       "The command below produces the missing runs.")
    if random_weights:
        notes.insert(0, "This model has RANDOM WEIGHTS (untrained): its numbers describe an "
                        "untrained network, not a pretrained one.")
    reference_untrained = _reference_untrained(runs_df, model, pretrained)
    if reference_untrained and not random_weights:
        notes.insert(0, f"The reference runs of {name} record RANDOM WEIGHTS (untrained): the forecast gains and "
                        "forgetting are fitted on an untrained network's runs, whatever weights made your sample's "
                        "embeddings.")
    return ForecastResult(
        model=model, pretrained=pretrained, model_label=model_label, random_weights=bool(random_weights),
        n_images=int(np.asarray(image).shape[0]), n_classes=len(class_names), iimm=zs["iimm"],
        iimm_lo=lo, iimm_hi=hi, zero_shot=zs, transferability=tf, measures=measures,
        baselines=baselines, forecasts=_wide(raw), raw_forecasts=raw, enough_runs=enough,
        message=message, command=command, notes=notes, timings=timings, selected=selected,
        reference_random_weights=reference_untrained)


def _reference_untrained(runs_df: pd.DataFrame, model: str, pretrained: str) -> bool:
    """Whether any stored run of (model, pretrained) records random weights (``core.cards.untrained_models``)."""
    from core.cards import untrained_models

    if runs_df.empty or not {"model", "pretrained"} <= set(runs_df.columns):
        return False
    mine = runs_df[(runs_df["model"] == model) & (runs_df["pretrained"] == pretrained)]
    return (model, pretrained) in untrained_models(mine)


def forecast_for_sample(loaded: Any, sample: Any, runs_df: pd.DataFrame, *,
                        progress: Progress | None = None, n_boot: int = 200,
                        use_cache: bool = False, image_embeddings: np.ndarray | None = None,
                        overlap_wait_s: float | None = None,
                        overlap_while_waiting: Callable[[float], None] | None = None,
                        overlap_done: Callable[[], None] | None = None, **kwargs: Any) -> ForecastResult:
    """Embed a labelled sample (``core.data.base.LabeledImages``) with ``loaded``
    (``core.models.LoadedModel``), then :func:`forecast_for_embeddings`.

    progress(done, total) is called after every embedding batch. The on-disk embedding
    cache is off by default: uploads are strangers' data. ``image_embeddings``: the sample's images
    embedded by ``loaded`` before (``core.embed.embed_images``), kept in memory by the caller; then only
    the prompts are embedded (``timings["embed_s"]`` is the embedding this call did). A reference dataset
    holding some of the sample's images is left out, and said so (``core.reference_overlap``, ``left_out``); one
    that cannot be checked offline, whose images cannot be read, or are not read within ``overlap_wait_s`` seconds
    (None: wait as long as it takes), is named (``not_checked``); ``overlap_while_waiting(seconds waited)`` is called
    every second of that wait (what it raises ends the forecast: a page's visitor left), and ``overlap_done()`` once
    the check has ended, before the prompts are embedded and the forecast fitted (a page clears its line there).
    """
    from core.embed import embed_dataset  # torch: only when images must be embedded
    from core.reference_overlap import leave_out_overlapping, say_left_out, say_unchecked, unchecked_references

    t0 = time.perf_counter()
    pending: dict[str, str] = {}
    runs_df, left_out = leave_out_overlapping(runs_df, sample.images, loaded.spec.arch, loaded.spec.pretrained_tag,
                                              class_names=sample.class_names, wait_s=overlap_wait_s, pending=pending,
                                              while_waiting=overlap_while_waiting)
    overlap_s = time.perf_counter() - t0
    if overlap_done is not None:
        overlap_done()
    t0 = time.perf_counter()
    emb = embed_dataset(loaded, sample, progress=progress, use_cache=use_cache, image_embeddings=image_embeddings)
    timings = {"embed_s": time.perf_counter() - t0, "overlap_s": overlap_s}
    from core.transferability import classifier_params

    spec = loaded.spec
    scale, bias = classifier_params(loaded.model)
    kwargs = {"logit_scale": scale, "logit_bias": bias, **kwargs}
    res = forecast_for_embeddings(emb.image, emb.text, emb.labels, emb.class_names, runs_df,
                                  model=spec.arch, pretrained=spec.pretrained_tag,
                                  model_label=emb.model_label, random_weights=emb.random_weights,
                                  n_boot=n_boot, timings=timings, **kwargs)
    if left_out:  # said first: the forecast's reference datasets are not all the store holds
        say_left_out(res, left_out, len(sample))  # and why, where too few runs remain
    say_unchecked(res, {**unchecked_references(runs_df, spec.arch, spec.pretrained_tag), **pending})  # not vouched for
    return res


def forecast_for_npz(arrays: dict[str, Any], runs_df: pd.DataFrame, model_key: str,
                     **kwargs: Any) -> ForecastResult:
    """Forecast from precomputed embeddings (``core.upload.load_embeddings_npz`` output) said to
    come from the registry model ``model_key``, whose stored runs are the reference. No reference dataset can be
    checked for the sample's images (it has none): each is named in ``not_checked``, as a note says."""
    from core.reference_overlap import embeddings_unchecked, say_unchecked

    spec = spec_for(model_key)
    res = forecast_for_embeddings(arrays["image_embeddings"], arrays["text_embeddings"], arrays["labels"],
                                  list(arrays["class_names"]), runs_df, model=spec.arch,
                                  pretrained=spec.pretrained_tag, random_weights=spec.random_weights,
                                  model_label=f"{spec.label}, uploaded embeddings", **kwargs)
    say_unchecked(res, embeddings_unchecked(runs_df, spec.arch, spec.pretrained_tag))
    return res


def reference_runs(runs_df: pd.DataFrame, model: str, pretrained: str,
                   method: str | None = None) -> pd.DataFrame:
    """The stored runs a forecast for (model, pretrained) is fitted on, optionally one method."""
    mask = (runs_df["model"] == model) & (runs_df["pretrained"] == pretrained)
    if method is not None:
        mask &= runs_df["method"] == method
    return runs_df[mask]


__all__ = ["ForecastResult", "OUTCOMES", "forecast_for_embeddings", "forecast_for_npz",
           "forecast_for_sample", "grid_command", "reference_runs", "softmax_probs"]
