import pytest

from core import text
from core.text import distinct_labels, plain


def test_plain_escapes_links_images_and_html():
    assert plain("[x](http://e.org)") == "\\[x\\]\\(http\\:\u2060//e\\.org\\)"
    assert plain("![i](u)").startswith(r"\!\[i\]")
    assert plain("<img src=x>") == r"\<img src\=x\>"


def test_plain_one_line_no_controls_and_capped():
    assert plain("a\nb\x00c\u202ed") == "a bcd"
    assert plain("abcdef", max_chars=4) == "abc…"
    assert plain(12) == "12"


def test_plain_rejects_bad_cap():
    with pytest.raises(ValueError, match="max_chars"):
        plain("x", max_chars=0)


def test_plain_breaks_gfm_autolinks_invisibly():
    shown = plain("see http://evil.example/x, www.evil.example and me@evil.example")
    assert "http\\://" not in shown and "www\\." not in shown and "@e" not in shown
    assert shown.replace("\u2060", "") == plain("see http\u2060://evil.example/x, www.evil.example and "
                                                "me@evil.example").replace("\u2060", "")
    assert plain("a\u2060b") == "ab"  # a joiner in the input is removed like other format characters


def test_distinct_labels_hand_checked():
    assert distinct_labels(["a", "b", "a"]) == ["a", "b", "a (2)"]
    assert distinct_labels(["a (2)", "a", "a"]) == ["a (2)", "a", "a (3)"]  # never takes another's own label
    assert distinct_labels(["x", "x", "y"], ["r1", "r2", "r3"]) == ["x · r1", "x · r2", "y"]
    assert distinct_labels(["x", "x"], ["same", "same"]) == ["x · same", "x · same (2)"]
    assert distinct_labels([]) == []


@pytest.mark.parametrize("n", [2, 7, 31])
def test_distinct_labels_are_distinct_and_keep_unique_ones(n):
    import random

    rng = random.Random(n)
    labels = [rng.choice(["a", "b", "a (2)", "b · t0", "c"]) for _ in range(n)]
    tags = [f"t{rng.randrange(3)}" for _ in range(n)]
    for out in (distinct_labels(labels), distinct_labels(labels, tags)):
        assert len(set(out)) == n
        assert all(o == s for o, s in zip(out, labels) if labels.count(s) == 1)
        assert all(o.startswith(s) for o, s in zip(out, labels))


def test_distinct_labels_rejects_tags_of_another_length():
    with pytest.raises(ValueError, match="tags has 1 entries for 2 labels"):
        distinct_labels(["a", "a"], ["t"])


def test_counted_puts_the_noun_in_the_right_number():
    from core.text import counted

    assert [counted(n, "run") for n in (0, 1, 2, 1720)] == ["0 runs", "1 run", "2 runs", "1,720 runs"]
    assert counted(1, "datum", "data") == "1 datum" and counted(3, "datum", "data") == "3 data"


def test_unmatched_link_text_caps_how_many_and_how_long_the_asked_values_are():
    """A URL is anyone's to write: at most five values are named (the rest counted), each at most 120 characters."""
    from core.text import unmatched_link_text

    many = unmatched_link_text("dataset", [f"d{i}" for i in range(8)], "showing every dataset")
    assert "d0, d1, d2, d3, d4 and 3 more, which is not among" in many and "d5" not in many
    assert "d4, which" in unmatched_link_text("dataset", [f"d{i}" for i in range(5)], "x")  # five: none counted
    long = unmatched_link_text("model", ["m" * 1000], "showing another")
    assert "m" * 119 in long and "m" * 121 not in long



def test_unmatched_link_text_names_a_value_of_unprintable_characters_as_such():
    """A link's value made only of control characters (?method=%00) is shown as nothing once :func:`plain` removes
    them: the page said 'the method , which is not among…', naming no value."""
    from core.text import unmatched_link_text

    said = unmatched_link_text("method", ["\x00", "lora\x07", " "], "showing every method")
    assert said.startswith("This link asks for the method (a blank or unprintable value), lora, (a blank or "
                           "unprintable value), which is not among"), said

def test_signed_writes_a_value_that_rounds_to_zero_as_plus_zero():
    """f'{-0.04:+.1f}' is '-0.0': an out-of-domain change of almost nothing read as a loss."""
    from core.text import signed

    assert [signed(v) for v in (-0.04, -0.0, 0.0, 0.04, -0.05001, 1.25, -3.46)] == [
        "+0.0", "+0.0", "+0.0", "+0.0", "-0.1", "+1.2", "-3.5"]
    assert signed(-0.004, 2) == "+0.00" and signed(-0.006, 2) == "-0.01"


def test_fixed_writes_a_value_that_rounds_to_zero_as_zero_and_signs_only_negatives():
    from core.text import fixed

    assert [fixed(v) for v in (-0.004, -0.0, 71.354, -1.5)] == ["0.00", "0.00", "71.35", "-1.50"]
    assert fixed(-0.04, 1) == "0.0" and fixed(-0.06, 1) == "-0.1"


def test_zeros_unsigned_makes_only_what_rounds_to_zero_zero():
    import numpy as np
    import pandas as pd

    from core.text import zeros_unsigned

    out = zeros_unsigned(pd.Series([-0.04, -0.0, 0.04, -0.05001, 1.25, np.nan]), 1)
    assert out.iloc[:5].tolist() == [0.0, 0.0, 0.0, -0.05001, 1.25] and np.isnan(out.iloc[5])
    assert not np.signbit(out.iloc[:3]).any()
    mixed = zeros_unsigned(pd.Series([None, -0.001, "n/a"], dtype=object), 1)  # a column of a hand-made record
    assert mixed.tolist() == [None, 0.0, "n/a"]


def test_distinct_labels_tells_apart_labels_that_differ_only_in_unicode_form():
    """'Café' composed and decomposed are two strings that every screen draws alike: two methods so named had two
    'Café' options, legend entries and table rows that no reader could tell apart."""
    import unicodedata

    composed, decomposed = "Café", unicodedata.normalize("NFD", "Café")
    assert distinct_labels([composed, decomposed]) == [composed, decomposed + " (2)"]
    assert distinct_labels([composed, decomposed], [composed, decomposed]) == [
        f"{composed} · {composed}", f"{decomposed} · {decomposed} (2)"]  # tags alike too: still told apart
    assert distinct_labels([composed, decomposed + " (2)", decomposed]) == [
        composed, decomposed + " (2)", decomposed + " (3)"]
    assert distinct_labels(["LoRA", "Lora"]) == ["LoRA", "Lora"]  # case shows: kept


def test_plain_keeps_a_right_to_left_name_from_taking_the_numbers_after_it():
    """In a left-to-right sentence the bidi algorithm ran 'שיטה, +14.7 in-domain' together as right-to-left: the
    Ranking page read 'Least forgetting …: 14.7+ ,שיטה in-domain' (Chromium). A name with right-to-left letters is now
    a first-strong isolate (U+2068 … U+2069); other text is unchanged, and isolates in the input are still removed."""
    assert plain("שיטה") == "\u2068שיטה\u2069" and plain("طريقة_عربية") == "\u2068طريقة\\_عربية\u2069"
    assert plain("Café") == "Café" and plain("a\u2068b\u2069") == "ab"
    assert plain("\u2068שיטה\u2069") == plain("שיטה")  # its own output, plained again, gets one isolate


def test_plain_isolates_the_right_to_left_names_inside_a_sentence_it_is_given_whole():
    """The Forecast page plains its verdict whole ('Predicted to gain most: שיטה, +14.7 points …'): isolated as one
    left-to-right text, the number after the name was still drawn before it ('14.7+ ,שיטה'). Each right-to-left
    run is isolated on its own, from its first right-to-left letter to its last."""
    assert plain("most: שיטה, +14.7 points") == "most\\: \u2068שיטה\u2069, \\+14\\.7 points"
    assert plain("a נ 2 ב, c ג") == "a \u2068נ 2 ב\u2069, c \u2068ג\u2069"


def test_shorten_keeps_the_start_or_the_start_and_end():
    assert text.shorten("abcdefghij", 10) == "abcdefghij"
    assert text.shorten("abcdefghij", 6) == "abcde…"
    assert text.shorten("abcdefghij", 6, keep_end=True) == "abc…ij"  # 3 + … + 2: the start gets the odd place
    assert text.shorten("abcdefghij", 7, keep_end=True) == "abc…hij"
    assert text.shorten("abcdefghij", 1, keep_end=True) == "…"
    assert text.shorten("abcdefghij", 2, keep_end=True) == "a…"
    with pytest.raises(ValueError, match="at least 1"):
        text.shorten("abc", 0, keep_end=True)


def test_did_you_mean_names_the_closest_known_name_ignoring_case_or_nothing():
    assert text.did_you_mean("lroa", ["lora", "bitfit"]) == " (did you mean 'lora'?)"
    assert text.did_you_mean("clip", ["CLIP", "CoCa"]) == " (did you mean 'CLIP'?)"
    assert text.did_you_mean("zzz", ["lora", "bitfit"]) == ""
    assert text.did_you_mean(3, []) == ""


def test_formatted_writes_a_finite_value_that_shows_as_zero_without_a_minus_in_any_spec():
    from core.text import formatted

    assert [formatted(v, "+.1f") for v in (-0.04, -0.0, 0.04, -0.06)] == ["+0.0", "+0.0", "+0.0", "-0.1"]
    assert [formatted(v, spec) for v, spec in ((-0.004, ".2f"), (-1e-9, ".3g"), (-1e-9, "+.4g"), (-1e-6, ".1%"),
                                               (-1e-7, ".3e"))] == ["0.00", "-1e-09", "-1e-09", "0.0%", "-1.000e-07"]
    assert [formatted(v, ".3g") for v in (-0.0, float("-inf"))] == ["0", "-inf"]  # only a finite zero loses its minus
