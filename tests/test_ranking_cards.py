"""core.cards: method and model cards (unknown and peft methods, each shipped model's own card, defaults as the
method configs', one family label per method), readable titles, untrained models and the toy note."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

from core import cards, ranking
from tests.ranking_helpers import frame


def test_untrained_models_come_from_the_registry_or_the_records_flag():
    runs = pd.concat([frame(n_datasets=1, pretrained=p) for p in ("world-v1", "random", "own-tag")])
    runs.loc[runs["pretrained"] == "own-tag", "random_weights"] = True
    assert cards.untrained_models(runs) == {("worldclip-tiny", "random"), ("worldclip-tiny", "own-tag")}
    runs["random_weights"] = None  # records that do not say: the registry alone decides
    assert cards.untrained_models(runs) == {("worldclip-tiny", "random")}
    assert cards.untrained_models(runs.iloc[:0]) == set()
    row = runs.iloc[0].to_dict() | {"random_weights": True}
    assert ranking.run_label(row).endswith("world-v1, RANDOM WEIGHTS)")


def test_untrained_models_read_a_float_flag_column_without_a_pandas_deprecation():
    # a join or an all-missing column makes the flag float64: filling it with False is deprecated in pandas 3
    runs = pd.concat([frame(n_datasets=1, pretrained=p) for p in ("world-v1", "random", "own-tag")])
    runs["random_weights"] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cards.untrained_models(runs) == {("worldclip-tiny", "random")}
        runs.loc[runs["pretrained"] == "own-tag", "random_weights"] = 1.0
        assert cards.untrained_models(runs) == {("worldclip-tiny", "random"), ("worldclip-tiny", "own-tag")}
    assert cards.flag_values(pd.Series([True, None, False], dtype=object)).tolist() == [True, False, False]


def test_a_stored_blank_pretrained_tag_gets_a_card_not_an_error():
    # the schema stores pretrained ' ' (it refuses only ''); spec_for refuses a blank tag for a run to be made,
    # and model_card / untrained_models raised on it, so every page that names models failed
    runs = pd.concat([frame(n_datasets=1, pretrained=p) for p in ("world-v1", " ")])
    assert cards.untrained_models(runs) == set()
    card = cards.model_card("worldclip-tiny", " ")
    assert "no pretrained tag" in card.title and not card.random_weights and not card.toy
    assert cards.model_notes(runs, set()) and cards.model_names(runs, set())[0][0] == "worldclip-tiny ( )"


def test_model_label_column_marks_only_the_rows_of_untrained_models():
    rows = pd.DataFrame({"model": ["ViT-B-32", "ViT-B-32", "tiny"], "pretrained": ["openai", "none", "none"]},
                        index=[7, 3, 5])
    labels = cards.model_label_column(rows, {("ViT-B-32", "none")})
    assert labels.to_dict() == {7: "ViT-B-32 · openai", 3: "ViT-B-32 · none" + cards.UNTRAINED_MARK,
                                5: "tiny · none"}
    # one model's label (the forecast's tables) is written as the column writes it
    assert [cards.model_label("ViT-B-32", "none", True), cards.model_label("tiny", "none")] == [labels[3], labels[5]]


def test_cards_cover_unknown_and_peft_methods():
    assert cards.method_card("lora").known and cards.method_card("lora").citation in cards.CITATIONS
    unknown = cards.method_card("peft_not_in_the_catalogue")
    assert not unknown.known and unknown.title == "Not in the catalogue (peft)" and unknown.family.startswith("peft")
    assert cards.method_title("my_new_method") == "My new method"
    assert all(c.citation is None or c.citation in cards.CITATIONS for c in cards.METHOD_CARDS.values())
    assert all(c.bibtex.startswith("@") and c.key in c.bibtex for c in cards.CITATIONS.values())
    toy = cards.model_card("worldclip-tiny", "world-v1")
    assert toy.toy and not toy.random_weights and "Model card" in (toy.markdown or "")
    clip = cards.model_card("ViT-B-32", "openai")
    assert not clip.toy and clip.open_clip_name == "ViT-B-32" and clip.markdown is None


@pytest.mark.parametrize("model, pretrained, heading", [
    ("worldclip-tiny", "world-v1", "worldclip-tiny"),
    ("worldclip-tiny", "world-v2-a", "worldclip-v2-a"),
    ("worldclip-tiny-sigmoid", "world-v2-b", "worldsiglip-v2-b"),
    ("worldclip-tiny", "world-v2-d", "worldclip-v2-d"),
])
def test_each_shipped_model_shows_its_own_card(model, pretrained, heading):
    # every world-v2 model used to show world v1's card (core/assets/MODEL_CARD.md)
    first_line = (cards.model_card(model, pretrained).markdown or "").splitlines()[0]
    assert first_line.startswith("# Model card") and heading in first_line
    if pretrained != "world-v1":
        assert "world-v1" not in first_line and pretrained in first_line


def test_card_defaults_match_the_method_configs():
    from core.methods import METHODS

    assert set(cards.METHOD_CARDS) >= {m for m in METHODS if not m.startswith("peft")}  # peft: from method_info
    for name, card in cards.METHOD_CARDS.items():
        config = METHODS[name].config_cls()
        for key, value in card.defaults.items():
            assert getattr(config, key) == value, (name, key)


def test_predictor_titles_are_readable():
    assert cards.predictor_title("h_score") == "H-score" and cards.predictor_title("iimm") == "IIMM"
    assert cards.predictor_title("my_new_score") == "my new score"


def test_peft_methods_get_their_family_summary_and_paper_from_the_method_registry():
    from core import cards

    dora = cards.method_card("peft_dora")
    assert dora.known and dora.family == "reparameterised" and dora.title == "DoRA (peft)"
    assert dora.paper_url.startswith("https://arxiv.org/") and dora.defaults["peft.use_dora"] is True
    assert not cards.method_card("peft_made_up").known


def test_every_method_has_one_family_label_and_a_readable_title():
    """Our methods' cards took labels of their own ('parameter-efficient') beside peft's registry families."""
    from core.method_info import FAMILIES, all_method_info

    for info in all_method_info():
        name, card = info.name, cards.method_card(info.name)
        assert card.family == info.family or (name == "peft" and card.family), name
        assert card.family in FAMILIES or name == "peft", (name, card.family)
    assert cards.method_card("bitfit").family == cards.method_card("peft_ln_tuning").family == "selective"
    assert cards.method_card("lora").family == cards.method_card("peft_lora").family == "reparameterised"
    assert cards.method_title("peft_hra") == "HRA (peft)" and cards.method_title("peft_ln_tuning") == "LN tuning (peft)"


def test_toy_note_leaves_random_weight_models_to_the_untrained_note():
    """A pair whose records flag random weights is not also called 'pretrained offline on the generated
    world', nor is the registry's random-weight toy, even when the caller's set leaves it out."""
    runs = pd.concat([frame(n_datasets=1, pretrained=p) for p in ("world-v1", "random")])
    flagged = runs.assign(random_weights=runs["pretrained"] == "world-v1")  # an ingested record says so
    untrained = cards.untrained_models(flagged)
    assert untrained == {("worldclip-tiny", "world-v1"), ("worldclip-tiny", "random")}
    assert cards.toy_note(flagged, untrained) is None
    notes = cards.model_notes(flagged, untrained, markdown=False)
    assert len(notes) == 1 and notes[0].startswith("RANDOM WEIGHTS: the numbers of worldclip-tiny (random, RANDOM")
    note = cards.toy_note(runs, set(), markdown=False)
    assert note is not None and note.startswith("Toy model: worldclip-tiny (world-v1) is a tiny model")


def test_a_reports_toy_note_says_world_v2s_manipulation_check_failed_as_the_pages_do():
    """The pages say of a world-v2 model that its world's pre-registered manipulation check failed, so its runs
    describe and test nothing; a report's markdown (jobs.grid_report, jobs.predictors' tables) said it was a toy
    alone, so a saved report read its taus as evidence. World v1's note does not borrow the sentence."""
    v2 = frame(n_datasets=1, pretrained="world-v2-a")
    note = cards.toy_note(v2, set())
    assert note is not None and note.startswith("**Toy model:** worldclip-tiny (world-v2-a) is a tiny model")
    assert "manipulation check failed" in note and note.endswith(cards.WORLD_V2_FAILED)
    both = pd.concat([v2, frame(n_datasets=1, pretrained="world-v1")])
    assert cards.model_notes(both, set(), markdown=False)[0].endswith(cards.WORLD_V2_FAILED)
    assert "manipulation" not in cards.toy_note(frame(n_datasets=1, pretrained="world-v1"), set())


def test_untrained_models_with_flags_from_names_only_the_shown_pairs():
    """flags_from widens where the flags are read, not which models are returned: a pair flagged elsewhere
    in the store but absent from the rows shown is not in the answer."""
    whole = pd.concat([frame(n_datasets=1, pretrained=p) for p in ("world-v1", "own-tag")])
    whole["random_weights"] = whole["pretrained"] == "own-tag"
    shown = whole[whole["pretrained"] == "world-v1"]
    assert cards.untrained_models(shown, flags_from=whole) == set()
    assert cards.untrained_models(whole.assign(random_weights=False), flags_from=whole) == {("worldclip-tiny", "own-tag")}


def test_model_label_column_tells_apart_models_whose_names_differ_only_in_unicode_form():
    """'Café' composed and decomposed, one tag: the Methods and models page's 'Measured' table (a row per model) and
    the All runs table each showed two 'Café · x' models that no reader could tell apart."""
    import unicodedata

    composed, decomposed = "Café", unicodedata.normalize("NFD", "Café")
    rows = pd.DataFrame({"model": [composed, decomposed, composed, "tiny"], "pretrained": ["x", "x", "x", "none"]})
    labels = [unicodedata.normalize("NFC", t) for t in cards.model_label_column(rows, {(composed, "x")})]
    assert labels == ["Café · x (2)" + cards.UNTRAINED_MARK, "Café · x", "Café · x (2)" + cards.UNTRAINED_MARK,
                      "tiny · none"]  # numbered in name order, the same for every row of a model


def test_the_model_picker_numbers_models_drawn_alike_as_the_tables_do():
    """'Café' composed and decomposed, one tag: the tables numbered them in name order (the decomposed 'Café · x',
    the composed 'Café · x (2)'), the model picker by ok runs (the composed, with more, 'Café · x'): a visitor who
    picked 'Café · x' saw the All runs table's rows of it read 'Café · x (2)'."""
    import unicodedata

    from core.text import model_pair

    composed, decomposed = "Café", unicodedata.normalize("NFD", "Café")
    runs = pd.DataFrame({"model": [composed, composed, decomposed], "pretrained": "x", "status": "ok"})
    table = dict(zip(zip(runs["model"], runs["pretrained"]), cards.model_label_column(runs, set())))
    picker = cards.model_labels(runs)
    assert list(picker) == cards.model_options(runs)  # still the model with most ok runs first
    assert {model_pair(k): label for k, label in picker.items()} == table
