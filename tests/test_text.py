import pytest

from core.text import plain


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
