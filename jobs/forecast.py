"""Forecast fine-tuning on dataset samples from the command line: what the app's Forecast page gives.

    python -m jobs.forecast SAMPLE [SAMPLE...] [--model KEY] [--template "a photo of a {c}"] [--results DIR]...
                            [--out FILE.csv|FILE.json] [--device cpu]

A SAMPLE is what the page takes: a zip of class folders (``cat/001.png``; in a ``train/``, ``test/`` layout
``train/`` is used), a zip of images with a ``file,label`` CSV, or an ``.npz`` of embeddings (``image_embeddings``,
``text_embeddings``, ``labels``, ``class_names``) made by ``--model``; or a folder, read as the zip of it would be
(its SHA-256 is that zip's: files in sorted order, fixed dates). A model that cannot be loaded here refuses each
image sample (an ``.npz`` needs no model). The same parsing,
limits and refusals as an upload (``core.upload``), the same model (a random-weight model is the network seed 0
draws, as on the page), the same reference runs (default: the app's store without submitted, unverified runs)
and the same procedure (``core.predict``, ``core.advice``): the printed numbers equal the page's for the same
sample, model and template. Several samples get one forecast each, the model and the store loaded once.
Progress goes to stderr; the forecasts to stdout: each sample's IIMM with its bootstrap interval,
zero-shot accuracy, the verdict with its ``warning:`` and ``note:`` lines and one row per method (predicted
in-domain gain and out-of-domain change with 95 % prediction intervals, the predictors each forecast rests on, its leave-one-dataset-out error). ``--out``
also writes the per-method rows as CSV (a ``sample`` column first), or everything as JSON: ``provenance``
(model, template, reference folders and run count, package versions, git revision, time), ``forecasts`` (per
sample: its path and SHA-256, measures, baselines, verdict, rows, how each forecast was chosen with its
measured coverage) and ``refused`` (samples that could not be used, with the reason). A reference dataset whose
splits hold some of an image sample's images is left out of its forecast, said in a note (and ``left_out``: in the
JSON by dataset with the images it holds, in the CSV as the datasets' names); one that cannot be checked offline
(a torchvision set) is named too (``not_checked``: in the JSON with the reason, in the CSV by name), and for an
``.npz`` sample, which has no images, every reference dataset is. The upload's warnings the page shows under it
(images or embedding rows repeated exactly, classes dropped for too few images, the ``train/`` split used) are kept
with the forecast: ``upload_warnings``, a list per sample in the JSON, '; '-joined in a CSV column; the CSV's
``warnings`` and ``notes`` columns then hold the verdict's warnings and the forecast's notes (' | '-joined: a toy
model, baselines left blank or scored on a subsample...), as printed and in the JSON.

Exit (``jobs.cli``'s convention): 0 every sample forecast; 1 some sample could not be used (said on stderr; the
others are forecast and written); 2 an option, the store, or every sample cannot be used (nothing written); 3
the model has too few reference runs for any forecast (the zero-shot measures and the verdict's warnings are
printed, with the grid command that would make the runs, and written by a .json ``--out``; a .csv, one row per
method, gets its header alone).
"""
from __future__ import annotations

import hashlib
import logging
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from jobs.cli import (EXIT_FAILED, EXIT_INCOMPLETE, check_device, check_file_out, check_results_folder, job_parser,
                      no_runs, user_facing, work_begins)

log = logging.getLogger(__name__)
OUT_SUFFIXES = (".csv", ".json")
DEFAULT_TEMPLATE = "a photo of a {c}"
#: The columns printed per method, with their headers.
PRINTED = {"method_title": "method", "id_gain": "gain", "gain_ci": "95 % interval", "ood_change": "OOD change",
           "ood_ci": "95 % interval", "gain_basis": "gain predicted from", "gain_lodo": "LODO error",
           "n_datasets": "datasets", "note": "note"}


def check_sample(path: Path) -> str:
    """The sample's kind: "folder" (read as the zip of it), "zip" or "npz"; ValueError for anything else."""
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise ValueError(f"SAMPLE {path} does not exist")
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("zip", "npz"):
        raise ValueError(f"SAMPLE {path} is neither a .zip of labelled images nor an .npz of embeddings")
    return kind


def _progress():
    """An embedding progress callback that logs about every quarter of the images, and the last batch."""
    logged = 0

    def progress(done: int, total: int) -> None:
        nonlocal logged
        quarter = 4 * done // max(total, 1)
        if quarter > logged or done == total:
            logged = quarter
            log.info("embedded %d of %d images", done, total)
    return progress


def printed_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """``core.advice.forecast_rows`` output for a terminal: signed numbers to one decimal, each interval as one
    text (the page shows its ends as two number columns, to sort by), a note for an extrapolating or failed
    forecast."""
    from core.ranking import interval_texts
    from core.text import signed

    def _signed(value: Any) -> str:
        return "—" if pd.isna(value) or not math.isfinite(float(value)) else signed(value, 1)

    shown = rows.assign(
        id_gain=[_signed(v) for v in rows["id_gain"]], ood_change=[_signed(v) for v in rows["ood_change"]],
        gain_ci=interval_texts(rows["id_gain_lo"], rows["id_gain_hi"]),
        ood_ci=interval_texts(rows["ood_change_lo"], rows["ood_change_hi"]),
        gain_lodo=["—" if not math.isfinite(v) else f"{v:.1f}" for v in rows["gain_lodo"].astype(float)],
        note=["; ".join([*(["extrapolates"] if e else []), *([] if s == "ok" else [str(s)])])
              for e, s in zip(rows["extrapolation"], rows["status"], strict=True)])
    return shown[list(PRINTED)].rename(columns=PRINTED)


def report_lines(name: str, res: Any, rows: pd.DataFrame, verdict: Any, results: list[Path] | None = None
                 ) -> list[str]:
    """What the job prints: the sample and model, its zero-shot measures, the verdict and the per-method table.
    ``results``: the --results folders given (the job reads only those, so the grid's folder must be added)."""
    zs = res.zero_shot
    lines = [f"{name}: {res.title}",
             f"IIMM {res.iimm:.3f} (95 % bootstrap interval [{res.iimm_lo:.3f}, {res.iimm_hi:.3f}]); inter-modal "
             f"term {zs['inter_modal']:.3f}, intra-image term {zs['intra_image']:.3f}; zero-shot accuracy "
             f"{zs['zs_acc']:.1f} % (chance {100 / res.n_classes:.1f} %)"]
    if res.untrained:
        lines.append("RANDOM WEIGHTS: " + ("the model is untrained" if res.random_weights else
                                           "its reference runs are an untrained network's")
                     + "; these numbers describe no pretrained model")
    if res.enough_runs:  # as the page: the verdict, or why there is none; then the warnings and notes either way
        lines.append(f"Confidence: {verdict.confidence}. " + " ".join(verdict.headline + verdict.reasons))
    else:
        lines += [res.message or "too few reference runs for a forecast", f"make them with: {res.command}"]
        if results:  # the grid writes to its own --results folder, which this job does not read unless named
            words = shlex.split(res.command)
            made_in = words[-1] if len(words) > 1 and words[-2] == "--results" else "the grid's --results folder"
            lines.append(f"then add --results {made_in} to this command: it reads only the --results folders it "
                         f"is given ({', '.join(map(str, results))})")
    lines += [f"warning: {w}" for w in verdict.warnings] + [f"note: {n}" for n in res.notes]
    if not res.enough_runs:
        return lines
    lines.append("Predicted outcome per method (accuracy points; 95 % prediction intervals, shown as fitted):")
    return lines + printed_rows(rows).to_string(index=False).splitlines()


def _python_scalar(value: Any) -> Any:
    """``json``'s ``default`` for what it cannot write itself: a NumPy scalar as the Python one (a non-finite float
    as null); ``core.schema.json_text`` writes Python's NaN and infinities as null."""
    if not hasattr(value, "item") or isinstance(value, (str, bytes)):
        raise TypeError(f"{type(value).__name__} is not JSON")
    value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def document(res: Any, rows: pd.DataFrame, verdict: Any, selection: pd.DataFrame) -> dict:
    """Everything a forecast gave, as one dict for ``--out FILE.json`` (one of its forecasts)."""
    return {
        "model": res.model, "pretrained": res.pretrained, "model_label": res.model_label,
        "random_weights": bool(res.random_weights), "reference_random_weights": bool(res.reference_random_weights),
        "n_images": res.n_images, "n_classes": res.n_classes,
        "iimm": {"value": res.iimm, "lo": res.iimm_lo, "hi": res.iimm_hi},
        "measures": _records(res.measures), "baselines": _records(res.baselines),
        "enough_runs": bool(res.enough_runs), "message": res.message, "command": res.command, "notes": res.notes,
        "left_out": res.left_out,  # reference datasets holding some of the sample's images: {name: images held}
        "not_checked": res.not_checked,  # reference datasets not checked for them (not at hand offline): {name: why}
        "verdict": {"confidence": verdict.confidence, "headline": verdict.headline, "reasons": verdict.reasons,
                    "warnings": verdict.warnings} if res.enough_runs else {"warnings": verdict.warnings},
        "methods": _records(rows), "selection": _records(selection),  # json_text writes NaN as null
        "upload_warnings": res.upload_warnings}  # what the page says under the upload (repeated images...)


def _provenance(model_key: str, template: str | None, roots: list, n_runs: int, device: str, seconds: float) -> dict:
    from core.experiment import git_revision, package_versions

    return {"model_key": model_key, "template": template, "reference_roots": [str(r) for r in roots],
            "reference_runs": n_runs, "device": device, "git_revision": git_revision(),
            "versions": package_versions(), "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(seconds, 3)}


class _Model:
    """The model, loaded on the first image sample that needs it and then kept for the others; a model that cannot
    be loaded (weights not available offline) is tried once, and each image sample is refused with its reason."""

    def __init__(self, key: str, device: str) -> None:
        self.key, self.device = key, device
        self._loaded: Any = None  # a core.models.LoadedModel once loaded
        self._failed: Exception | None = None

    def get(self) -> Any:
        from core.models import ModelUnavailableError, load_model
        from core.upload import UploadError

        if self._failed is None and self._loaded is None:
            log.info("loading %s…", self.key)
            try:
                self._loaded = load_model(self.key, device=self.device, init_seed=0)  # random weights: the page's
            except ModelUnavailableError as exc:
                self._failed = exc
        if self._failed is not None:  # an image sample needs the model; an .npz sample does not
            raise UploadError(f"needs the model to embed its images: {self._failed}")
        return self._loaded


def forecast(sample: Path | BinaryIO, kind: str, model: _Model, template: str, runs: pd.DataFrame) -> Any:
    """The ``core.predict.ForecastResult`` for a sample (a file, or a folder as :func:`sample_source` reads it), as
    the page makes it (UploadError when the sample cannot be used), with the upload's warnings the page shows under
    it (``upload_warnings``: repeated images or embedding rows, classes dropped): the written forecast keeps them."""
    from core import predict
    from core.upload import (embedding_width, embeddings_summary, load_embeddings_npz, load_image_folder_zip,
                             upload_warnings)

    if kind == "npz":
        arrays = load_embeddings_npz(sample, expected_dim=embedding_width(model.key))
        log.info("%s", embeddings_summary(arrays))
        res = predict.forecast_for_npz(arrays, runs, model.key)
        res.upload_warnings = upload_warnings(arrays)
        return res
    parsed = load_image_folder_zip(sample, template=template)
    log.info("%s", parsed.summary())
    loaded = model.get()
    log.info("embedding %d images…", len(parsed.data))
    res = predict.forecast_for_sample(loaded, parsed.data, runs, progress=_progress())
    res.upload_warnings = upload_warnings(parsed)
    return res


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.forecast", description=__doc__.split("\n")[0])
    p.add_argument("samples", type=Path, nargs="+", metavar="SAMPLE",
                   help="a folder or .zip of labelled images, or an .npz of embeddings (several: one forecast each)")
    p.add_argument("--model", default=None, metavar="KEY",
                   help="registry model key, as the app's model cards name them (default: the offline default "
                        "model, worldclip-tiny); for an .npz, the model that made the embeddings")
    p.add_argument("--template", default=None,
                   help=f"prompt template for an image sample, {{c}} = class name (default {DEFAULT_TEMPLATE!r}); "
                        "an .npz carries its own text embeddings")
    p.add_argument("--results", action="append", type=Path, metavar="DIR",
                   help="a results folder of reference runs (repeatable); default: the app's store without "
                        "submitted, unverified runs")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the forecasts: .csv (one row per sample and "
                                                            "method) or .json (everything, with provenance)")
    p.add_argument("--device", default="cpu", help="where to embed: cpu, cuda or cuda:N (default cpu)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)  # this job's progress; the libraries' own chatter stays at warnings

    from core import store
    from core.models import DEFAULT_MODEL, check_model
    from core.upload import TemplateError, UploadError, check_template

    started = time.perf_counter()
    kinds = [check_sample(sample) for sample in args.samples]  # every sample checked before any work
    model_key = args.model or DEFAULT_MODEL
    check_model(model_key)  # an unknown key or tag: one sentence naming the known ones, before anything is read
    if kinds.count("npz") == len(kinds) and args.template is not None:
        raise ValueError("--template applies to an image sample: an .npz carries its own text embeddings")
    template = DEFAULT_TEMPLATE if args.template is None else args.template
    try:  # an option's problem, said once and before any sample is read (not blamed on each image sample)
        check_template(template)
    except TemplateError as exc:
        raise ValueError(f"--template {template!r}: {exc}") from None
    if args.out is not None:
        if args.out.suffix.lower() not in OUT_SUFFIXES:
            raise ValueError(f"--out {args.out}: name a .csv or .json file")
        check_file_out(args.out, "--out")
    device = check_device(args.device)
    roots = [check_results_folder(r) for r in args.results] if args.results else store.default_roots()
    runs = store.load_runs(roots)
    if not args.results:  # the app's store: as the forecast page, verified runs only
        runs = store.verified_runs(runs)
    if runs.empty:
        raise no_runs("runs", args.results)

    work_begins()
    model, made, failed = _Model(model_key, device), [], []
    for number, (sample, kind) in enumerate(zip(args.samples, kinds, strict=True), 1):
        if len(args.samples) > 1:
            log.info("[%d/%d] %s", number, len(args.samples), sample)
        try:
            try:
                source, digest = sample_source(sample, kind)
            except OSError as exc:  # unreadable (permissions, a folder below it): this sample's fault, not the job's
                raise UploadError(f"cannot be read ({exc.strerror or exc})") from exc
            res = forecast(source, kind, model, template, runs)
        except UploadError as exc:  # this sample cannot be used: said, and the others still forecast
            print(f"error: {sample}: {exc}", file=sys.stderr)
            failed.append({"sample": str(sample), "error": str(exc)})
            continue
        made.append(_made(sample, res, digest))
        print(("\n" if len(made) > 1 else "") + "\n".join(report_lines(sample.name, res, *made[-1][2:4], args.results)))
    if not made:
        raise ValueError(f"no sample could be used ({len(failed)} refused, reasons above)")
    if args.out is not None:
        used_template = None if kinds.count("npz") == len(kinds) else template
        _write(args.out, made, failed, _provenance(model_key, used_template, roots, len(runs), device,
                                                   time.perf_counter() - started))
    if failed:
        return EXIT_FAILED
    return 0 if all(res.enough_runs for _, res, *_ in made) else EXIT_INCOMPLETE


def sample_source(sample: Path, kind: str) -> tuple[Path | BinaryIO, str]:
    """What the parser reads for ``sample`` (a folder: the zip of it, ``core.upload.folder_as_zip``, so it is read as
    its zip would be uploaded) and the SHA-256 of those bytes. UploadError for a folder past the upload's caps."""
    from core.upload import DEFAULT_LIMITS, folder_as_zip

    if kind == "folder":
        archive = folder_as_zip(sample, limits=DEFAULT_LIMITS)
        return archive, hashlib.sha256(archive.getbuffer()).hexdigest()
    return sample, hashlib.sha256(sample.read_bytes()).hexdigest()


def _made(sample: Path, res: Any, digest: str) -> tuple:
    """(sample, result, per-method rows, verdict, the sample's SHA-256) for one forecast (without enough reference
    runs the verdict's warnings still hold, as on the page)."""
    from core import advice

    rows = advice.forecast_rows(res)
    return sample, res, rows, advice.advise_forecast(res, rows), digest


def _write(out: Path, made: list[tuple], failed: list[dict], provenance: dict) -> None:
    from core import forecast_select, store
    from core.schema import csv_text, json_text
    from core.text import formula_safe

    if out.suffix.lower() == ".csv":
        # left_out: the reference datasets this sample's forecast left out as they hold its images ('' for none);
        # not_checked: those it could not check for them; upload_warnings: what the page says under the upload
        # (repeated images, dropped classes), '' for none
        # warnings, notes: the verdict's warnings (a toy model, chance-level zero-shot accuracy...) and the
        # forecast's notes (baselines left blank or scored on a subsample...), printed and in the JSON
        frames = [rows.assign(sample=str(sample), model=res.model, pretrained=res.pretrained,
                              random_weights=res.untrained, left_out="; ".join(res.left_out),
                              not_checked="; ".join(res.not_checked),
                              upload_warnings="; ".join(res.upload_warnings),
                              warnings=" | ".join(verdict.warnings), notes=" | ".join(res.notes))
                  for sample, res, rows, verdict, _ in made]
        table = pd.concat(frames, ignore_index=True)
        # method and dataset names come from the reference store, whose records others may have made: a text cell
        # that starts as a formula gets an apostrophe, as in the app's CSV downloads
        store.write_file_atomic(out, csv_text(formula_safe(table[["sample", *table.columns.drop("sample")]])))
    else:
        coverage = forecast_select.read_selections(store.SHIPPED_DIR)
        documents = []
        for sample, res, rows, verdict, digest in made:
            selection = forecast_select.with_measured_coverage(  # raw keys: the page's expander, before renaming
                res.selected, coverage, model=res.model, pretrained=res.pretrained) if not res.selected.empty \
                else pd.DataFrame()
            documents.append({"sample": str(sample), "sample_sha256": digest,
                              **document(res, rows, verdict, selection)})
        store.write_file_atomic(out, json_text({"provenance": provenance, "forecasts": documents, "refused": failed},
                                               indent=1, default=_python_scalar))
    log.info("wrote %s", out)


if __name__ == "__main__":
    raise SystemExit(main())
