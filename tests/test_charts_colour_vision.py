"""Method colours as people with colour-vision deficiency see them (core.charts.colour_vision): the simulation and
colour difference checked against published values, then the palette and the trade-off chart's marks.

The bar: two methods drawn in one shape must stay at least 15 apart in CIEDE2000 for normal vision and as
protanopes and deuteranopes see them (Machado et al. 2009, full severity). A difference of about 1 is just
noticeable between two large patches side by side; a chart's marks are small and apart, and the difference needed
to tell small marks apart grows several-fold as they shrink (Stone, Szafir and Setlur 2014), so 15 keeps a margin
of that order. The 20 colours before had pairs under 1 as a deuteranope sees them (and 5.7 for normal vision)."""
import itertools

import pytest

from core import ranking, store
from core.charts import colour_vision as cv
from core.charts.base import BASELINE_COLOUR, METHOD_BLOCK, METHOD_PALETTE, method_colours, method_shapes
from core.charts.tradeoff import FRONT_LABEL, gain_vs_forgetting
from tests.fixtures import SHIPPED_METHODS, make_fixture_records

BAR = 15.0  # CIEDE2000, see above
TOLD_APART = ("normal", "protanopia", "deuteranopia")


@pytest.mark.parametrize("lab1, lab2, expected", [  # Sharma, Wu and Dalal (2005), their test data
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),  # hue angles across 0°
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082)])
def test_ciede2000_matches_the_published_test_data(lab1, lab2, expected):
    assert cv.ciede2000(lab1, lab2) == pytest.approx(expected, abs=5e-5)
    assert cv.ciede2000(lab2, lab1) == pytest.approx(expected, abs=5e-5)


def test_lab_and_simulation_keep_what_they_must():
    assert cv.lab(cv.rgb("#ffffff")) == pytest.approx([100.0, 0.0, 0.0], abs=1e-3)
    assert cv.lab(cv.rgb("#000000")) == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert cv.lab(cv.rgb("#ff0000")) == pytest.approx([53.24, 80.09, 67.20], abs=0.02)  # sRGB red, D65
    for vision in cv.CVD_MATRICES:  # a dichromat tells greys apart as anyone does (each row of the model sums to 1)
        for grey in ("#000000", "#777777", "#ffffff"):
            assert cv.simulate(grey, vision) == pytest.approx(cv.rgb(grey), abs=1e-5)
    # red and green, far apart for normal vision, nearly one colour to protanopes and deuteranopes
    assert cv.difference("#d62728", "#2ca02c") > 50
    assert cv.difference("#ec7014", "#4d9221", "protanopia") < 2 and cv.difference("#dd3497", "#35978f",
                                                                                     "deuteranopia") < 2


def test_bad_colours_and_visions_are_refused():
    with pytest.raises(ValueError, match="'#rrggbb'"):
        cv.rgb("red")
    with pytest.raises(ValueError, match="'#rrggbb'"):
        cv.rgb("#12345g")
    with pytest.raises(ValueError, match="unknown vision 'achromatopsia'"):
        cv.simulate("#123456", "achromatopsia")
    assert cv.min_difference(["#123456"]) == (float("inf"), None)


@pytest.mark.parametrize("vision", TOLD_APART)
def test_the_colours_of_one_shape_are_told_apart_with_colour_vision_deficiency(vision):
    """Each block of the palette (the colours that share a mark shape) and the baseline's colour."""
    for start in range(0, len(METHOD_PALETTE), METHOD_BLOCK):
        block = [*METHOD_PALETTE[start:start + METHOD_BLOCK], BASELINE_COLOUR]
        worst, pair = cv.min_difference(block, vision)
        assert worst >= BAR, (vision, start, round(worst, 1), pair)
    worst, pair = cv.min_difference(METHOD_PALETTE)  # and for normal vision every colour is its own
    assert worst >= 10, (round(worst, 1), pair)


def test_every_two_shipped_methods_differ_in_shape_or_in_colour_as_anyone_sees_it():
    """The 19 fine-tuning methods of the shipped grid, as the ranking's chart draws them."""
    methods = [m for m in SHIPPED_METHODS if m != "zero_shot"]
    colours, shapes = method_colours(methods), method_shapes(methods)
    assert len({(colours[m], shapes[m]) for m in methods}) == len(methods) == 19
    assert len(set(shapes.values())) == 3
    for one, other in itertools.combinations(methods, 2):
        if shapes[one] == shapes[other]:
            for vision in TOLD_APART:
                assert cv.difference(colours[one], colours[other], vision) >= BAR, (one, other, vision)


def test_the_tradeoff_chart_draws_each_method_in_its_colour_and_shape_with_one_legend():
    rows = ranking.method_ranking(store.records_to_frame(make_fixture_records(n_datasets=4, methods=SHIPPED_METHODS)))
    spec = gain_vs_forgetting(rows).to_dict()
    (marks,) = [layer for layer in spec["layer"] if "shape" in layer.get("encoding", {})]
    color, shape = marks["encoding"]["color"], marks["encoding"]["shape"]
    assert color["field"] == shape["field"] == "method_title" and color["legend"] == shape["legend"]  # merged
    assert color["scale"]["domain"] == shape["scale"]["domain"]
    titles = dict(zip(rows["method_title"], rows["method"].astype(str)))
    expected = method_shapes(rows["method"])
    assert [expected[titles[t]] for t in shape["scale"]["domain"]] == shape["scale"]["range"]
    assert set(shape["scale"]["range"]) == {"circle", "square", "triangle-up"}
    (rings,) = [layer for layer in spec["layer"] if "stroke" in layer.get("encoding", {})]
    assert rings["encoding"]["stroke"]["scale"]["domain"] == [FRONT_LABEL] and rings["mark"]["filled"] is False
    assert rings["transform"] == [{"filter": "datum.pareto"}]  # the Pareto methods' rings, and only theirs


def test_a_registered_method_keeps_its_colour_and_shape_whichever_methods_a_chart_draws():
    """Colours went by name order of the methods drawn: LoRA was one colour beside the 19 shipped methods, another
    beside a world-v2 model's nine, and a user's new method ('adapter_x') moved every method named after it."""
    shipped = [m for m in SHIPPED_METHODS if m != "zero_shot"]
    everything = method_colours(shipped), method_shapes(shipped)
    for drawn in (["lora", "wise_ft"], ["lora", "wise_ft", "adapter_x", "zero_shot"], shipped + ["aaa", "zzz"]):
        colours, shapes = method_colours(drawn), method_shapes(drawn)
        for m in ("lora", "wise_ft"):
            assert (colours[m], shapes[m]) == (everything[0][m], everything[1][m]), (m, drawn)
        tuned = [m for m in drawn if m != "zero_shot"]
        assert len({(colours[m], shapes[m]) for m in tuned}) == len(tuned)  # a user's method shares no look
    mine = method_colours(["aaa", "zzz", "adapter_x"])  # a store of only one's own methods: palette colours
    assert set(mine.values()) <= set(METHOD_PALETTE) and len(set(mine.values())) == 3


def test_every_method_of_the_project_has_its_own_place_in_the_palette():
    from core.charts.base import METHOD_COLOUR_ORDER

    assert set(METHOD_COLOUR_ORDER) == {m for m in SHIPPED_METHODS if m != "zero_shot"} | {"peft"}
    assert len(METHOD_COLOUR_ORDER) == len(set(METHOD_COLOUR_ORDER)) <= len(METHOD_PALETTE)
