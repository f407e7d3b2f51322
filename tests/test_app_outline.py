"""Each page's headings as a screen reader lists them: one title (h1), and no level skipped on the way down (a
section under the title is an h2, not an h3), through AppTest on a fixture store."""
import re

import pytest

from core import store
from tests.app_helpers import app_test, page

LEVELS = {"title": 1, "header": 2, "subheader": 3}


def _headings(node) -> list[tuple[int, str]]:
    """(level, text) of the headings under ``node`` in page order: title, header and subheader elements, and the
    '#' lines of markdown."""
    found = []
    kind = getattr(node, "type", None)
    if kind in LEVELS:
        found.append((LEVELS[kind], node.value))
    elif kind == "markdown":
        found += [(len(m.group(1)), m.group(2)) for m in re.finditer(r"^(#{1,6}) (.+)$", node.value, re.M)]
    for child in getattr(node, "children", {}).values():
        found += _headings(child)
    return found


def _skips(headings: list[tuple[int, str]]) -> list[str]:
    return [f"h{before} then h{level} {text!r}" for (before, _), (level, text) in zip(headings, headings[1:])
            if level > before + 1]


@pytest.mark.parametrize("name", ["ranking", "matrix", "compare", "runs", "forecast", "cards", "submit", "about"])
def test_no_page_skips_a_heading_level(fixture_store, name):
    """The Compare page went from its title (h1) to 'How well IIMM explains each outcome' and 'IIMM against the other
    … scores' (h3), the All runs page to 'One run in detail' (h3): a screen reader's outline had no h2 above them."""
    (store.SHIPPED_DIR / "predictors.csv").write_text(  # the Compare page's shipped table, with its own heading
        "model,pretrained,method,predictor,family,outcome,status,kendall_tau,lodo_mae\n"
        "worldclip-tiny,random,full,iimm,zero-shot,id_gain,ok,0.8,1\n", encoding="utf-8")
    at = (app_test() if name == "ranking" else page(name)).run()
    assert not at.exception
    headings = _headings(at.main)
    assert [level for level, _ in headings].count(1) == 1 and headings[0][0] == 1, headings
    assert not _skips(headings), headings
