"""core.model_cards' ``__all__`` names only what the module holds (a star import works), and core.cards re-exports it."""
import core.cards
import core.model_cards


def test_star_import_of_model_cards_works_and_gives_its_names():
    names: dict = {}
    exec("from core.model_cards import *", names)  # raised AttributeError while __all__ named core.cards' names
    exported = set(names) - {"__builtins__"}
    assert exported == set(core.model_cards.__all__)
    assert {"ModelCard", "model_card", "model_label", "untrained_note", "model_options"} <= exported


def test_core_cards_re_exports_every_model_cards_name():
    missing = [n for n in core.model_cards.__all__ if getattr(core.cards, n, None) is not getattr(core.model_cards, n)]
    assert missing == []
