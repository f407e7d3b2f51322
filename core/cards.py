"""What the app says about methods and models: one registry of method cards, model cards, citations.

Method metadata lives in :data:`METHOD_CARDS` (one entry per method name as stored in records).
A method the registry does not know (a new ``peft_*`` method, a user's own) still gets a card from
:func:`method_card`: a readable title built from its name, a family guessed from its prefix and a
sentence saying that its runs' configs tell what trained. Add a method by adding one entry, after its
``MethodInfo`` in ``core.method_info.OURS`` (which gives its family); its ``citation`` must be a key of
:data:`CITATIONS` (else give the link as ``paper_url``).
Defaults here mirror the config dataclasses of ``core.methods`` (a test compares them), without
importing torch, so the browsing pages stay light.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.text import distinct_labels, model_key, model_pair, option_labels

if TYPE_CHECKING:
    import pandas as pd

    from core.models import ModelSpec

log = logging.getLogger(__name__)

MODEL_CARD_FILE = Path(__file__).resolve().parent / "assets" / "MODEL_CARD.md"


@dataclass(frozen=True)
class Citation:
    """One paper: a short label for text, a link, and its BibTeX entry."""

    key: str
    label: str
    url: str
    bibtex: str


@dataclass(frozen=True)
class MethodCard:
    """What a fine-tuning method trains, in words, with its defaults and its paper."""

    name: str
    title: str
    family: str
    trains: str
    defaults: dict[str, object] = field(default_factory=dict)
    citation: str | None = None  # a key of CITATIONS
    baseline: bool = False  # the zero-shot reference row, not a fine-tuning method
    known: bool = True  # False for a card made up from an unknown name
    paper_url: str = ""  # for methods without a CITATIONS entry (e.g. peft's catalogue)


CITATIONS: dict[str, Citation] = {c.key: c for c in (
    Citation("niss2025iimm", "Niss, Vogt-Lowell, Tsiligkaridis. The Inter-Intra Modal Measure: A Predictive Lens "
             "on Fine-Tuning Outcomes in Vision-Language Models. ICCV 2025", "https://arxiv.org/abs/2407.15731",
             "@inproceedings{niss2025iimm,\n  title={The Inter-Intra Modal Measure: A Predictive Lens on "
             "Fine-Tuning Outcomes in Vision-Language Models},\n  author={Niss, Laura and Vogt-Lowell, Kevin and "
             "Tsiligkaridis, Theodoros},\n  booktitle={Proceedings of the IEEE/CVF International Conference on "
             "Computer Vision (ICCV)},\n  year={2025},\n  note={arXiv:2407.15731}\n}"),
    Citation("vogtlowell2023aclip", "Vogt-Lowell, Lee, Tsiligkaridis, Vaillant. Robust Fine-Tuning of "
             "Vision-Language Models for Domain Generalization. IEEE HPEC 2023 (the attention-weight tuning "
             "study we take to be the A-CLIP paper)", "https://arxiv.org/abs/2311.02236",
             "@inproceedings{vogtlowell2023aclip,\n  title={Robust Fine-Tuning of Vision-Language Models for "
             "Domain Generalization},\n  author={Vogt-Lowell, Kevin and Lee, Noah and Tsiligkaridis, Theodoros "
             "and Vaillant, Marc},\n  booktitle={IEEE High Performance Extreme Computing Conference (HPEC)},\n"
             "  year={2023},\n  note={arXiv:2311.02236}\n}"),
    Citation("liu2024clipcite", "Liu, Li, Yu. Fully Fine-tuned CLIP Models are Efficient Few-Shot Learners "
             "(CLIP-CITE). arXiv 2024", "https://arxiv.org/abs/2407.04003",
             "@article{liu2024clipcite,\n  title={Fully Fine-tuned {CLIP} Models are Efficient Few-Shot "
             "Learners},\n  author={Liu, Mushui and Li, Bozheng and Yu, Yunlong},\n  journal={arXiv preprint "
             "arXiv:2407.04003},\n  year={2024}\n}"),
    Citation("li2024orthcr", "Li, Zhao, Jie, Ricci, Ma, Sebe. Enhancing Robustness of Vision-Language Models "
             "through Orthogonality Learning and Cross-Regularization (OrthCR). arXiv 2024",
             "https://arxiv.org/abs/2407.08374",
             "@article{li2024orthcr,\n  title={Enhancing Robustness of Vision-Language Models through "
             "Orthogonality Learning and Cross-Regularization},\n  author={Li, Jinlong and Zhao, Dong and Jie, "
             "Zequn and Ricci, Elisa and Ma, Lin and Sebe, Nicu},\n  journal={arXiv preprint arXiv:2407.08374},\n"
             "  year={2024}\n}"),
    Citation("radford2021clip", "Radford et al. Learning Transferable Visual Models From Natural Language "
             "Supervision (CLIP). ICML 2021", "https://arxiv.org/abs/2103.00020",
             "@inproceedings{radford2021clip,\n  title={Learning Transferable Visual Models From Natural Language "
             "Supervision},\n  author={Radford, Alec and Kim, Jong Wook and Hallacy, Chris and others},\n"
             "  booktitle={International Conference on Machine Learning (ICML)},\n  year={2021}\n}"),
    Citation("benzaken2022bitfit", "Ben Zaken, Ravfogel, Goldberg. BitFit: Simple Parameter-efficient "
             "Fine-tuning for Transformer-based Masked Language-models. ACL 2022", "https://arxiv.org/abs/2106.10199",
             "@inproceedings{benzaken2022bitfit,\n  title={{BitFit}: Simple Parameter-efficient Fine-tuning for "
             "Transformer-based Masked Language-models},\n  author={Ben Zaken, Elad and Ravfogel, Shauli and "
             "Goldberg, Yoav},\n  booktitle={Proceedings of ACL (Short Papers)},\n  year={2022}\n}"),
    Citation("hu2022lora", "Hu et al. LoRA: Low-Rank Adaptation of Large Language Models. ICLR 2022",
             "https://arxiv.org/abs/2106.09685",
             "@inproceedings{hu2022lora,\n  title={{LoRA}: Low-Rank Adaptation of Large Language Models},\n"
             "  author={Hu, Edward J. and Shen, Yelong and Wallis, Phillip and others},\n  booktitle="
             "{International Conference on Learning Representations (ICLR)},\n  year={2022}\n}"),
    Citation("gao2024clipadapter", "Gao et al. CLIP-Adapter: Better Vision-Language Models with Feature "
             "Adapters. IJCV 2024", "https://arxiv.org/abs/2110.04544",
             "@article{gao2024clipadapter,\n  title={{CLIP-Adapter}: Better Vision-Language Models with Feature "
             "Adapters},\n  author={Gao, Peng and Geng, Shijie and Zhang, Renrui and others},\n  journal="
             "{International Journal of Computer Vision},\n  year={2024}\n}"),
    Citation("wortsman2022wiseft", "Wortsman et al. Robust Fine-Tuning of Zero-Shot Models (WiSE-FT). CVPR 2022",
             "https://arxiv.org/abs/2109.01903",
             "@inproceedings{wortsman2022wiseft,\n  title={Robust Fine-Tuning of Zero-Shot Models},\n  author="
             "{Wortsman, Mitchell and Ilharco, Gabriel and Kim, Jong Wook and others},\n  booktitle={Proceedings "
             "of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},\n  year={2022}\n}"),
)}

def _family(name: str) -> str:
    """A built-in method's family, from the method registry (core.method_info): one set of labels,
    the same for our methods and peft's, in the app and in the records."""
    from core.method_info import OURS

    if name not in OURS:  # a new method's card written before its MethodInfo: a bare KeyError stopped every page
        raise ValueError(f"method card {name!r}: add its MethodInfo to core.method_info.OURS first "
                         "(its family comes from there; see core.methods)")
    return OURS[name].family


def check_citations(method_cards: dict[str, MethodCard]) -> None:
    """ValueError naming a card whose ``citation`` is not a key of :data:`CITATIONS` (the Methods and models page
    looks it up there; a new method's card citing a key never added raised KeyError on that page)."""
    for card in method_cards.values():
        if card.citation is not None and card.citation not in CITATIONS:
            raise ValueError(f"method card {card.name!r} cites {card.citation!r}, which is not a key of "
                             f"core.cards.CITATIONS: add a Citation there, or give its link as paper_url")


METHOD_CARDS: dict[str, MethodCard] = {c.name: c for c in (
    MethodCard("zero_shot", "Zero-shot (no training)", _family("zero_shot"),
               "nothing: the pretrained model classifies with its class prompts", citation="radford2021clip",
               baseline=True),
    MethodCard("full_ft", "Full fine-tuning", _family("full_ft"), "every parameter of both towers and the temperature",
               citation="radford2021clip"),
    MethodCard("bitfit", "BitFit", _family("bitfit"), "every bias inside the blocks of both towers",
               citation="benzaken2022bitfit"),
    MethodCard("attention", "Attention tuning (A-CLIP)", _family("attention"),
               "only the packed Q/K/V input-projection weight of every block of both towers",
               citation="vogtlowell2023aclip"),
    MethodCard("lora", "LoRA", _family("lora"),
               "low-rank deltas on the Q and V blocks of every attention layer of both towers; base weights frozen",
               {"rank": 4, "scale": 0.2}, citation="hu2022lora"),
    MethodCard("clip_adapter", "CLIP-Adapter", _family("clip_adapter"),
               "a bottleneck MLP on each tower's output, mixed with the frozen features",
               {"reduction": 4, "ratio": 0.2}, citation="gao2024clipadapter"),
    MethodCard("linear_probe", "Linear probe", _family("linear_probe"),
               "a linear layer on frozen image features, started from the zero-shot head",
               citation="radford2021clip"),
    MethodCard("orthogonal", "Orthogonal FT (OrthCR-style)", _family("orthogonal"),
               "Cayley rotations of the q/k/v and first MLP weights, regularised towards the zero-shot "
               "image embeddings, with Cutout", {"cr_weight": 1.0}, citation="li2024orthcr"),
    MethodCard("clip_cite", "CLIP-CITE", _family("clip_cite"),
               "the whole model, with an image-text discriminative loss and distillation from the zero-shot model",
               {"disc_weight": 0.7, "kd_weight": 0.1, "alpha": 0.5}, citation="liu2024clipcite"),
    MethodCard("wise_ft", "WiSE-FT", _family("wise_ft"),
               "like full fine-tuning, then the weights are interpolated with the zero-shot ones",
               {"alpha": 0.5}, citation="wortsman2022wiseft"),
)}

check_citations(METHOD_CARDS)

#: Name prefixes of method families the registry may not list one by one.
FAMILY_PREFIXES = {"peft_": "peft (Hugging Face) adapter"}
_ACRONYMS = {"lora": "LoRA", "dora": "DoRA", "ia3": "IA³", "oft": "OFT", "boft": "BOFT", "vera": "VeRA", "hra": "HRA",
             "ln": "LN", "ft": "FT", "clip": "CLIP", "peft": "peft", "loha": "LoHa", "lokr": "LoKr",
             "adalora": "AdaLoRA"}


def _title_from_name(name: str) -> str:
    words = [w for w in name.replace("-", "_").split("_") if w]
    return " ".join(_ACRONYMS.get(w.lower(), w.capitalize() if i == 0 else w) for i, w in enumerate(words)) \
        or name


def method_card(name: str) -> MethodCard:
    """The card of method ``name``; a generic card (``known=False``) for a name not registered. A name that is no
    string (a hand-made frame's method 1) is read as its text (it raised AttributeError from ``startswith``)."""
    name = str(name)
    if name in METHOD_CARDS:
        return METHOD_CARDS[name]
    family = next((f for prefix, f in FAMILY_PREFIXES.items() if name.startswith(prefix)), "other")
    title = _title_from_name(name)
    if name.startswith("peft_"):
        title = f"{_title_from_name(name.removeprefix('peft_'))} (peft)"
    from core.method_info import method_info  # the method registry's own facts (no torch import)

    try:
        info = method_info(name)
    except ValueError:
        return MethodCard(name, title, family, "not described here yet: each run's config shows what trained",
                          known=False)
    defaults = {f"peft.{k}": v for k, v in info.peft_config.items()}
    return MethodCard(name, title, info.family or family, info.summary, defaults=defaults, paper_url=info.paper)


def method_title(name: str) -> str:
    """The readable name of a method (its card's title)."""
    return method_card(name).title


def method_titles(methods: Iterable[object]) -> dict[str, str]:
    """Each distinct method name in ``methods`` -> its title (:func:`method_title`), made distinct where names
    share one ('LoRA · Lora'): a table or legend that titled 'lora', 'LoRA' and 'Lora' each 'LoRA' showed three
    rows, or one colour, that no reader could tell apart."""
    names = sorted({str(m) for m in methods})
    return dict(zip(names, distinct_labels([method_title(m) for m in names], tags=names)))


def card_options(stored_methods: Iterable[object]) -> dict[str, str]:
    """The method options of the Methods and models page (its ``?card=`` link values): every registered card,
    then each stored method, -> its option label, distinct as :func:`method_titles` makes titles ('LoRA · Lora').
    A page linking to a card takes its label from here: 'LoRA' opened the card of 'lora' for 'LoRA' and 'Lora'."""
    names = list(dict.fromkeys([*METHOD_CARDS, *sorted({str(m) for m in stored_methods})]))
    return option_labels(names, method_title, tags=names)


#: Readable names of the zero-shot measures and transferability scores compared as predictors.
PREDICTOR_TITLES = {
    "iimm": "IIMM", "inter_modal": "IIMM's inter-modal term", "intra_image": "IIMM's intra-image term",
    "zs_acc": "zero-shot accuracy", "correct_pair": "correct-pair similarity", "modality_gap": "modality gap",
    "intra_text": "prompt-to-prompt similarity", "silhouette_classes": "silhouette of the classes",
    "silhouette_modality": "silhouette of images vs prompts", "emms": "EMMS", "logme": "LogME", "gbc": "GBC",
    "sfda": "SFDA", "leep": "LEEP", "nce": "NCE", "ncti": "NCTI", "transrate": "TransRate", "h_score": "H-score",
    "gbc_diagonal": "GBC (diagonal Gaussians)"}


def model_option(spec: ModelSpec) -> str:
    """A forecast-model option (``core.models.ModelSpec``) that says which models cannot load offline."""
    note = (" · downloads its weights (not available offline)" if spec.needs_download
            else " · toy model, offline" if spec.family == "tiny" else " · offline")  # every option says which
    return f"{spec.key}: {spec.label}{note}"


def predictor_title(name: str) -> str:
    """The readable name of a predictor; unknown names are shown with spaces for underscores."""
    return PREDICTOR_TITLES.get(name, name.replace("_", " "))


def baseline_titles() -> list[str]:
    """The readable names of the transferability baselines, one per entry of ``core.transferability.BASELINES``
    in its order: the About page listed nine by hand and left out ``gbc_diagonal``, and a baseline added there
    would have been left out too."""
    from core.transferability import BASELINES  # numpy and scipy: only where the list is asked for

    return [predictor_title(name) for name in BASELINES]


def predictor_set_title(label: str) -> str:
    """The readable name of a predictor set labelled 'iimm + zs_acc' (``core.forecast_select.set_label``):
    'IIMM + zero-shot accuracy'."""
    return " + ".join(predictor_title(name.strip()) for name in str(label).split(" + "))


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
    from core.models import DEFAULT_MODEL

    if not spec.shipped_weights:
        return None
    if spec.key == DEFAULT_MODEL:
        return MODEL_CARD_FILE
    return MODEL_CARD_FILE.parent / Path(spec.shipped_weights).with_suffix(".card.md").name


def model_card(model: str, pretrained: str) -> ModelCard:
    """The card of the stored (model, pretrained) pair, from the model registry. Never raises for a pair the
    schema stores: a blank tag (' '), which :func:`core.models.spec_for` refuses for a run to be made, gets a
    card that says the records name no weights."""
    from core.models import spec_for  # no torch: core.models imports open_clip only to build models

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
    pairs = set(zip(runs["model"].astype(str), runs["pretrained"].astype(str)))
    source = runs if flags_from is None else flags_from
    flagged = set()
    if "random_weights" in source.columns:
        marked = source[flag_values(source["random_weights"])]
        flagged = set(zip(marked["model"].astype(str), marked["pretrained"].astype(str))) & pairs
    return flagged | {pair for pair in pairs - flagged if model_card(*pair).random_weights}


def model_names(frame: pd.DataFrame, untrained: AbstractSet[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Every (model, pretrained) of ``frame`` as 'model (pretrained)', sorted, marked RANDOM WEIGHTS where
    its numbers come from an untrained network (``untrained``: :func:`untrained_models` of the runs); and
    the names of those marked, for a report that must say so."""
    pairs = sorted(set(zip(frame["model"].astype(str), frame["pretrained"].astype(str))))
    names = [f"{m} ({p}{', RANDOM WEIGHTS' if (m, p) in untrained else ''})" for m, p in pairs]
    return names, [n for n, pair in zip(names, pairs) if pair in untrained]


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

    pairs = list(zip(frame["model"].astype(str), frame["pretrained"].astype(str)))
    ordered = sorted(set(pairs))
    distinct = dict(zip(ordered, distinct_labels([model_label(m, p) for m, p in ordered])))
    names = pd.Series([distinct[pair] for pair in pairs], index=frame.index, dtype=object)
    return names.where([(str(m), str(p)) not in untrained for m, p in zip(frame["model"], frame["pretrained"])],
                       names + UNTRAINED_MARK)


def untrained_note(names: list[str], markdown: bool = True) -> str:
    """The warning a report gives when some of its numbers come from the random-weight models ``names``."""
    head = "**RANDOM WEIGHTS:**" if markdown else "RANDOM WEIGHTS:"
    return (f"{head} the numbers of {', '.join(names)} come from untrained networks: they describe "
            "random weights, not a pretrained model.")


def toy_note(frame: pd.DataFrame, untrained: AbstractSet[tuple[str, str]], markdown: bool = True) -> str | None:
    """The line a report gives when some of its numbers come from the project's toy models (tiny models
    pretrained offline on the generated world, not real pretrained weights); None when none does. A toy
    with random weights is left to :func:`untrained_note`."""
    pairs = sorted(set(zip(frame["model"].astype(str), frame["pretrained"].astype(str))) - set(untrained))
    toys = [f"{m} ({p})" for m, p in pairs if model_card(m, p).toy and not model_card(m, p).random_weights]
    if not toys:
        return None
    head = "**Toy model:**" if markdown else "Toy model:"
    return (f"{head} {', '.join(toys)} {'is a tiny model' if len(toys) == 1 else 'are tiny models'} pretrained "
            "offline on this project's generated world, not real pretrained weights: the numbers show how the "
            "method works, not how real CLIP models behave.")


def model_notes(frame: pd.DataFrame, untrained: AbstractSet[tuple[str, str]], markdown: bool = True) -> list[str]:
    """What a report must say about the models of ``frame``: :func:`untrained_note` and :func:`toy_note`, where due."""
    random_names = model_names(frame, untrained)[1]
    notes = [untrained_note(random_names, markdown) if random_names else None, toy_note(frame, untrained, markdown)]
    return [note for note in notes if note]


__all__ = ["PREDICTOR_TITLES", "baseline_titles", "predictor_set_title", "predictor_title", "CITATIONS", "Citation", "METHOD_CARDS", "MethodCard", "ModelCard", "method_card", "method_title",
           "model_card", "model_card_path", "model_label", "model_label_column", "model_names", "model_notes", "toy_note", "untrained_models", "flag_values", "UNTRAINED_MARK",
           "untrained_note"]


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
