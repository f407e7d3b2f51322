"""The test settings (pyproject.toml's filterwarnings) fail a test on a deprecation a library raises about our call,
and keep ignoring the ones a library raises about its own internals. Python attributes a warning to the module of
the frame its ``stacklevel`` points at; :func:`warnings.warn_explicit` names that module directly here."""
import warnings

import pytest

OURS = ["core.embed", "core", "jobs.grid", "pages.forecast", "tests.test_world", "app", "serve", "forecast_ui",
        "__main__"]  # __main__: the module Streamlit runs a page script in
THEIRS = ["pandas.core.frame", "streamlit.elements.arrow", "torch.nn.modules.module", "application", "coreutils",
          "jobsearch.api", "appdirs"]


def _warn(category, module):
    warnings.warn_explicit("deliberately deprecated", category, f"{module.replace('.', '/')}.py", 1,
                           module=module, registry={})


@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
@pytest.mark.parametrize("module", OURS)
def test_a_deprecation_attributed_to_our_code_fails_the_test(module, category):
    with pytest.raises(category, match="^deliberately deprecated$"):
        _warn(category, module)


@pytest.mark.parametrize("module", THEIRS)
def test_a_deprecation_inside_a_library_stays_ignored(module):
    with warnings.catch_warnings(record=True) as seen:
        _warn(DeprecationWarning, module)  # raises nothing: ignored
    assert seen == []  # catch_warnings(record=True) keeps the filters: an ignored warning is not even recorded


@pytest.mark.parametrize("module", THEIRS)
def test_a_pending_deprecation_inside_a_library_is_no_error(module):
    """Only ours fail (pandas' Pandas5Warning, a change pandas 5 makes, is a PendingDeprecationWarning): a library's
    own is left for pytest's summary."""
    with warnings.catch_warnings(record=True) as seen:
        _warn(PendingDeprecationWarning, module)  # raises nothing
    assert [str(w.message) for w in seen] == ["deliberately deprecated"]
