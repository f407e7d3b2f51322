"""What the app says about methods and models: one registry of method cards, citations, predictor names; the
model cards and labels are ``core.model_cards``, re-exported here.

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

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.model_cards import (  # noqa: F401 (re-exported: the pages and jobs read model cards from here)
    MODEL_CARD_FILE, UNTRAINED_MARK, WORLD_V2_FAILED, ModelCard, flag_values, model_card, model_card_path, model_label,
    model_label_column, model_labels, model_names, model_notes, model_option, model_options, toy_note,
    untrained_models, untrained_note, world_v2)
from core.text import distinct_labels, option_labels


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
    return dict(zip(names, distinct_labels([method_title(m) for m in names], tags=names), strict=True))


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
