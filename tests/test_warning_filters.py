"""The test settings (pyproject.toml's filterwarnings) fail a test on a deprecation a library raises about our call,
and keep ignoring the ones a library raises about its own internals. Python attributes a warning to the module of
the frame its ``stacklevel`` points at; :func:`warnings.warn_explicit` names that module directly here. Streamlit
logs its deprecations instead of warning: tests/streamlit_deprecations.py fails a test on one of our call."""
import warnings

import pytest

OURS = ["core.embed", "core", "jobs.grid", "pages.forecast", "tests.test_world", "app", "serve", "forecast_ui",
        "page_waits", "ranking_ui", "__main__"]  # __main__: the module Streamlit runs a page script in
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


def _deprecated_st_call():
    import numpy as np
    import streamlit as st

    st.image(np.zeros((2, 2, 3), np.uint8), use_container_width=True)  # Streamlit: "use `width`", logged, not warned


def test_a_streamlit_deprecation_of_our_call_fails_the_test():
    from tests.streamlit_deprecations import refused

    said = r"tests\.test_warning_filters: Please replace `use_container_width`"
    with pytest.raises(pytest.fail.Exception, match=said):
        with refused():  # innermost: it, not the one tests/conftest.py wraps this test in, takes the message
            _deprecated_st_call()


def test_a_streamlit_deprecation_in_a_page_script_fails_the_test():
    from streamlit.testing.v1 import AppTest

    from tests.streamlit_deprecations import refused

    at = AppTest.from_string("import numpy as np\nimport streamlit as st\n"
                             "st.image(np.zeros((2, 2, 3), np.uint8), use_container_width=True)\n")
    with pytest.raises(pytest.fail.Exception, match=r"__main__: Please replace `use_container_width`"):
        with refused():
            at.run()


def test_a_streamlit_deprecation_of_a_library_call_is_left_to_the_log():
    import logging

    from tests.streamlit_deprecations import LOGGER, refused

    library = {"__name__": "somelib.widgets"}  # a module of another package that calls Streamlit
    exec(compile("def draw():\n    import numpy as np, streamlit as st\n"
                 "    st.image(np.zeros((2, 2, 3), np.uint8), use_container_width=True)\n",
                 "somelib/widgets.py", "exec"), library)
    logged = []
    handler = logging.Handler()
    handler.emit = logged.append
    logging.getLogger(LOGGER).addHandler(handler)
    try:
        with refused() as messages:
            library["draw"]()
    finally:
        logging.getLogger(LOGGER).removeHandler(handler)
    assert len(logged) == 1 and messages == []  # Streamlit said it; the test goes on


def test_every_test_is_watched_for_streamlit_deprecations(request):
    assert "_streamlit_deprecations_refused" in request.fixturenames
