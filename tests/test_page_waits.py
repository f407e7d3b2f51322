"""page_waits.waiting: a wait's line is cleared when the block fails, and left alone when Streamlit stops the run."""
import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

import page_waits


@pytest.fixture()
def cleared(monkeypatch):
    calls = []
    monkeypatch.setattr(page_waits.Wait, "done", lambda self: calls.append(self.told))
    return calls


def test_a_failed_block_clears_its_wait_line_and_raises(cleared):
    with pytest.raises(ValueError, match="boom"):
        with page_waits.waiting("waiting for a turn"):
            raise ValueError("boom")
    assert cleared == ["waiting for a turn"]


def test_a_block_that_ends_clears_its_wait_line_once(cleared):
    with page_waits.waiting("waiting for a turn"):
        pass
    assert cleared == ["waiting for a turn"]


def test_a_run_streamlit_stops_draws_nothing_more(cleared):
    """A stopped or rerun run (ScriptControlException, a BaseException) must send the page nothing: catching every
    BaseException would clear the line of a page no one sees."""
    with pytest.raises(StopException):
        with page_waits.waiting("waiting for a turn"):
            raise StopException()
    assert cleared == []
