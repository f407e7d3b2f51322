"""What the app says about models: the card of a stored (model, pretrained) pair, the labels that mark
random-weight and toy models wherever their numbers appear, and the forecast page's model options. Reads the
registry (``core.model_specs``) and shipped card files only: no torch. ``core.cards`` re-exports every name.
"""
from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.text import distinct_labels, model_key, model_pair, option_labels

if TYPE_CHECKING:
    import pandas as pd

    from core.model_specs import ModelSpec

MODEL_CARD_FILE = Path(__file__).resolve().parent / "assets" / "MODEL_CARD.md"


def model_option(spec: ModelSpec) -> str:
    """A forecast-model option (``core.model_specs.ModelSpec``) that says which models cannot load offline."""
    note = (" · downloads its weights (not available offline)" if spec.needs_download
            else " · toy model, offline" if spec.family == "tiny" else " · offline")  # every option says which
    return f"{spec.key}: {spec.label}{note}"


@dataclass(frozen=True)
class ModelCard:
    """What the app says about one (model, pretrained) pair of the store."""

    title: str
    open_clip_name: str
    pretrained: str
    weights_source: str
    toy: bool  # a small stand-in pretrained on the generated world, not a real model
    random_weights: bool
    markdown: str | None = None  # the shipped model card (trusted repository text), if any


def model_card_path(spec: ModelSpec) -> Path | None:
    """Where the card of a model with shipped weights lives (None for other models): the offline default's
    is MODEL_CARD.md (``jobs.world_report --card``), every other one sits beside its weights as
    ``<weights>.card.md`` (``jobs.world_check --cards``)."""
    from core.model_specs import DEFAULT_MODEL

    if not spec.shipped_weights:
        return None
    if spec.key == DEFAULT_MODEL:
        return MODEL_CARD_FILE
    return MODEL_CARD_FILE.parent / Path(spec.shipped_weights).with_suffix(".card.md").name


def model_card(model: str, pretrained: str) -> ModelCard:
    """The card of the stored (model, pretrained) pair, from the model registry. Never raises for a pair the
    schema stores: a blank tag (' '), which :func:`core.model_specs.spec_for` refuses for a run to be made, gets a
    card that says the records name no weights."""
    from core.model_specs import spec_for  # no torch, no open_clip

    if not str(pretrained).strip():  # stored records may hold it (the schema refuses only ''); pages must not fail
        return ModelCard(title=f"{model} (no pretrained tag)", open_clip_name=model, pretrained=pretrained,
                         weights_source="unknown: its records name no pretrained tag", toy=False,
                         random_weights=False)
    spec = spec_for(model, pretrained)
    toy = spec.family == "tiny"
    path = model_card_path(spec)
    markdown = path.read_text(encoding="utf-8") if path is not None and path.is_file() else None
    return ModelCard(title=spec.label, open_clip_name=spec.arch, pretrained=spec.pretrained_tag,
                     weights_source=spec.weights_source, toy=toy, random_weights=spec.random_weights,
                     markdown=markdown)


def flag_values(column: pd.Series) -> pd.Series:
    """A True/False/missing column (bools, 0/1, None, NaN) as plain bool, missing = False. Through pandas'
    nullable boolean: filling a float64 column (all-missing, or after a join) with False is deprecated in pandas 3
    and will raise in a later release."""
    return column.astype("boolean").fillna(False).astype(bool)


def untrained_models(runs: pd.DataFrame, *, flags_from: pd.DataFrame | None = None) -> set[tuple[str, str]]:
    """The (model, pretrained) pairs of ``runs`` whose numbers come from random weights: those the
    model registry calls untrained, and those any of their records flags (``random_weights``), so an
    ingested record with its own tag is labelled too. ``flags_from``: the records whose flags count
    (default ``runs``; e.g. the whole store, when ``runs`` is the part of it a page shows)."""
    if runs.empty:
        return set()
    pairs = set(zip(runs["model"].astype(str), runs["pretrained"].astype(str), strict=True))
    source = runs if flags_from is None else flags_from
    flagged = set()
    if "random_weights" in source.columns:
        marked = source[flag_values(source["random_weights"])]
        flagged = set(zip(marked["model"].astype(str), marked["pretrained"].astype(str), strict=True)) & pairs
    return flagged | {pair for pair in pairs - flagged if model_card(*pair).random_weights}


def model_names(frame: pd.DataFrame, untrained: AbstractSet[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Every (model, pretrained) of ``frame`` as 'model (pretrained)', sorted, marked RANDOM WEIGHTS where
    its numbers come from an untrained network (``untrained``: :func:`untrained_models` of the runs); and
    the names of those marked, for a report that must say so."""
    pairs = sorted(set(zip(frame["model"].astype(str), frame["pretrained"].astype(str), strict=True)))
    names = [f"{m} ({p}{', RANDOM WEIGHTS' if (m, p) in untrained else ''})" for m, p in pairs]
    return names, [n for n, pair in zip(names, pairs, strict=True) if pair in untrained]


#: What a model label carries when its numbers come from random weights (the All runs table, the cards page).
UNTRAINED_MARK = " (RANDOM WEIGHTS)"


def model_label(model: str, pretrained: str, untrained: bool = False) -> str:
    """'model · pretrained', with :data:`UNTRAINED_MARK` when its numbers come from random weights: one model's
    label, as :func:`model_label_column` writes it in every row of a table."""
    return f"{model} · {pretrained}{UNTRAINED_MARK if untrained else ''}"


def model_label_column(frame: pd.DataFrame, untrained: AbstractSet[tuple[str, str]]) -> pd.Series:
    """:func:`model_label` for each row of ``frame``, marked where its numbers come from random weights
    (``untrained``: :func:`untrained_models`). Two models whose labels a screen draws alike ('Café' composed and
    decomposed) are told apart as :func:`core.text.distinct_labels` does it, numbered in name order."""
    import pandas as pd  # here: the registry itself needs no pandas

    pairs = list(zip(frame["model"].astype(str), frame["pretrained"].astype(str), strict=True))
    ordered = sorted(set(pairs))
    distinct = dict(zip(ordered, distinct_labels([model_label(m, p) for m, p in ordered]), strict=True))
    names = pd.Series([distinct[pair] for pair in pairs], index=frame.index, dtype=object)
    return names.where([(str(m), str(p)) not in untrained
                        for m, p in zip(frame["model"], frame["pretrained"], strict=True)],
                       names + UNTRAINED_MARK)


def untrained_note(names: list[str], markdown: bool = True) -> str:
    """The warning a report gives when some of its numbers come from the random-weight models ``names``."""
    head = "**RANDOM WEIGHTS:**" if markdown else "RANDOM WEIGHTS:"
    return (f"{head} the numbers of {', '.join(names)} come from untrained networks: they describe "
            "random weights, not a pretrained model.")


#: What a world-v2 model's numbers are, wherever they are shown or saved (jobs/results/world-v2/manipulation-check.md).
WORLD_V2_FAILED = ("World v2's pre-registered manipulation check failed (rarity in pretraining did not make image "
                   "embeddings more alike), so these runs describe; they do not test whether IIMM predicts gain or "
                   "forgetting.")


def world_v2(model: str, pretrained: str) -> bool:
    """Whether (model, pretrained) is one of world v2's models, whose world failed its manipulation check."""
    from core.model_specs import WORLD_V2_MODELS

    return any(s.arch == model and s.shipped_tag == pretrained for s in WORLD_V2_MODELS)


def toy_note(frame: pd.DataFrame, untrained: AbstractSet[tuple[str, str]], markdown: bool = True) -> str | None:
    """The line a report gives when some of its numbers come from the project's toy models (tiny models
    pretrained offline on the generated world, not real pretrained weights), with :data:`WORLD_V2_FAILED` where
    one is world v2's, as the pages say it; None when none does. A toy with random weights is left to
    :func:`untrained_note`."""
    pairs = sorted(set(zip(frame["model"].astype(str), frame["pretrained"].astype(str), strict=True)) - set(untrained))
    toys = [(m, p) for m, p in pairs if model_card(m, p).toy and not model_card(m, p).random_weights]
    if not toys:
        return None
    head = "**Toy model:**" if markdown else "Toy model:"
    return (f"{head} {', '.join(f'{m} ({p})' for m, p in toys)} "
            f"{'is a tiny model' if len(toys) == 1 else 'are tiny models'} pretrained "
            "offline on this project's generated world, not real pretrained weights: the numbers show how the "
            "method works, not how real CLIP models behave."
            + (" " + WORLD_V2_FAILED if any(world_v2(m, p) for m, p in toys) else ""))


def model_notes(frame: pd.DataFrame, untrained: AbstractSet[tuple[str, str]], markdown: bool = True) -> list[str]:
    """What a report must say about the models of ``frame``: :func:`untrained_note` and :func:`toy_note`, where due."""
    random_names = model_names(frame, untrained)[1]
    notes = [untrained_note(random_names, markdown) if random_names else None, toy_note(frame, untrained, markdown)]
    return [note for note in notes if note]


__all__ = ["MODEL_CARD_FILE", "UNTRAINED_MARK", "WORLD_V2_FAILED", "ModelCard", "flag_values", "model_card",
           "model_card_path", "model_label", "model_label_column", "model_labels", "model_names", "model_notes",
           "model_option", "model_options", "toy_note", "untrained_models", "untrained_note", "world_v2"]


def model_options(runs: pd.DataFrame) -> list[str]:
    """Every (model, pretrained) of the store as a key, the one with most ok runs first."""
    counts = (runs["status"] == "ok").groupby([runs["model"], runs["pretrained"]]).sum()
    return [model_key(m, p) for m, p in counts.sort_values(ascending=False, kind="stable").index]


def model_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Model key -> its option label ('arch · tag'), for :func:`model_options`' keys (in their order); labels a screen
    draws alike numbered in name order, as :func:`model_label_column` numbers them in tables."""
    keys = model_options(runs)
    labels = option_labels(sorted(keys, key=model_pair), lambda k: " · ".join(model_pair(k)))
    return {k: labels[k] for k in keys}
