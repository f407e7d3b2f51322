"""The Submit page's waits as a visitor sees them (AppTest): a submission waits for a turn while others' are read
(core.store.submissions: SUBMISSION_SLOTS at once, up to SUBMISSION_WAIT_S) and for the submissions store's lock while
another writer stores runs (core.store.ingest: up to 600 s). Each said nothing: the page sat unchanged, and a visitor
who left was not noticed, their run taking its turn and storing their runs once the wait ended. Each now says
"… (N s so far)" while it waits, is cleared when it ends, and a visitor who leaves stops the run within a second,
holding nothing and storing nothing."""
import fcntl
import json
import threading
import zipfile
from io import BytesIO

import pytest

from core.store import submissions
from core.store.ingest import INGEST_LOCK
from core.turns import Turns
from tests.app_helpers import LeavingVisitor, page, sent_markdown
from tests.fixtures import make_fixture_records
from tests.store_helpers import submission_stores


@pytest.fixture
def stores(tmp_path, monkeypatch):
    """A shipped store of 2 runs, no local one, and an empty submissions store (returned)."""
    return submission_stores(tmp_path, monkeypatch)[2]


class _Held:
    """What another visitor or writer holds while this page's submission waits: the only submission turn, or the
    submissions store's ingest lock (an flock of its own open file, as another process's ingest takes it);
    ``release()`` ends it (once)."""

    def __init__(self, monkeypatch, what: str, folder=None) -> None:
        if what == "turn":
            monkeypatch.setattr(submissions, "_SUBMISSION_TURNS", Turns(1))
            self._turn = submissions._SUBMISSION_TURNS.turn(wait_s=0)
            self._turn.__enter__()
        else:
            folder.mkdir(parents=True, exist_ok=True)
            self._file = open(folder / INGEST_LOCK, "a+b")  # noqa: SIM115 - released by release()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        self.what, self.released = what, False

    def release(self) -> None:
        if not self.released:
            self.released = True
            if self.what == "turn":
                self._turn.__exit__(None, None, None)
            else:
                self._file.close()


def _records_zip() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, rec in enumerate(make_fixture_records(n_datasets=2, methods=("lora",))):
            zf.writestr(f"r{i}.json", json.dumps(rec))
    return buf.getvalue()


def _sent_spinners(monkeypatch) -> list[list[str]]:
    """The spinners on the page each time the page is sent its transient elements (Streamlit draws a spinner so,
    after half a second, and clears it so): the text of each, a list per message."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    sent, real = [], ScriptRunContext.enqueue

    def enqueue(ctx, msg):
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_transient":
            sent.append([e.spinner.text for e in msg.delta.new_transient.elements if e.WhichOneof("type") == "spinner"])
        real(ctx, msg)

    monkeypatch.setattr(ScriptRunContext, "enqueue", enqueue)
    return sent


def _submit(monkeypatch, visitor=None):
    """The page after a visitor submits the records zip, and the Markdown and spinners it was sent meanwhile."""
    at = page("submit").run()
    at.file_uploader(key="sub_upload").set_value(("runs.zip", _records_zip(), "application/zip")).run()
    sent, spinners = sent_markdown(monkeypatch), _sent_spinners(monkeypatch)
    if visitor is not None:
        visitor(monkeypatch)
    at.button(key="sub_go").click().run()
    return at, sent, spinners


def _stored(folder) -> list[str]:
    return sorted(p.name for p in folder.glob("*.json")) if folder.exists() else []


def _free(held: str, folder) -> bool:
    """Whether the submission turn (``held`` "turn") or the store's ingest lock is free now."""
    if held == "turn":
        try:
            with submissions._SUBMISSION_TURNS.turn(wait_s=0):
                return True
        except Exception:  # noqa: BLE001 - BusyError: still held
            return False
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / INGEST_LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return True


TOLD = {"turn": "yours is read when one ends", "lock": "yours are stored when that ends"}


def test_a_submission_waiting_for_a_turn_says_so_then_that_the_server_is_busy(stores, monkeypatch):
    held = _Held(monkeypatch, "turn")
    monkeypatch.setattr(submissions, "SUBMISSION_WAIT_S", 1.5)
    try:
        at, sent, _ = _submit(monkeypatch)
    finally:
        held.release()
    assert not at.exception and "The server is busy" in at.warning[0].value
    assert any(TOLD["turn"] in line and line.endswith("(1 s so far)") for line in sent)
    assert not [m.value for m in at.markdown if "so far" in m.value or TOLD["turn"] in m.value]  # cleared
    assert _stored(stores) == []


def test_a_submission_waiting_for_another_writers_lock_says_so_and_is_stored_once_it_ends(stores, monkeypatch):
    held = _Held(monkeypatch, "lock", stores)
    timer = threading.Timer(1.6, held.release)  # the other writer ends
    timer.start()
    try:
        at, sent, spinners = _submit(monkeypatch)
    finally:
        timer.cancel()
        held.release()
    assert not at.exception and at.success[0].value.startswith("2 accepted")
    assert ["Reading, checking and storing your records…"] in spinners and spinners[-1] == []  # shown, then gone
    assert any(TOLD["lock"] in line and line.endswith("(1 s so far)") for line in sent)
    assert not [m.value for m in at.markdown if "so far" in m.value or TOLD["lock"] in m.value]  # cleared
    assert len(_stored(stores)) == 2


@pytest.mark.parametrize("held", ["turn", "lock"])
def test_a_visitor_who_leaves_while_a_submission_waits_stops_it_holding_and_storing_nothing(stores, monkeypatch,
                                                                                            held):
    """The other holder ends as the visitor leaves: the run, stopped at its next message, must not take the turn or
    the lock then and store the runs of a visitor who is gone (nor wait on for them)."""
    other = _Held(monkeypatch, held, stores)
    visitors, timer = [], threading.Timer(3, other.release)  # at the latest: a page that never tells waits no longer
    timer.start()
    try:
        at, _, _ = _submit(monkeypatch, lambda mp: visitors.append(LeavingVisitor(mp, TOLD[held], other.release)))
    finally:
        timer.cancel()
        other.release()
    assert visitors[0].stopped and not at.exception and not at.success and not at.warning and not at.error
    assert _stored(stores) == [] and _free("turn", stores) and _free("lock", stores)


def test_a_wait_for_a_store_lock_is_told_every_second_and_what_that_raises_leaves_the_lock_free(tmp_path):
    """core.store.compaction.file_lock's ``wait`` (core.turns.WaitShown): told as the wait begins and every second,
    done once the lock is taken; a wait ended by what it raises (a visitor who left) takes nothing."""
    from core.store.compaction import file_lock

    class Shown:
        def __init__(self, leave_at: float | None = None) -> None:
            self.told, self.leave_at = [], leave_at

        def tell(self, waited=None):
            self.told.append(None if waited is None else round(waited))
            if waited is not None and self.leave_at is not None and waited >= self.leave_at:
                raise KeyboardInterrupt  # as Streamlit's StopException: no Exception

        def done(self):
            self.told.append("done")

    lock, other = tmp_path / INGEST_LOCK, threading.Event()

    def writer(seconds: float) -> None:
        with file_lock(lock):
            other.set()
            threading.Event().wait(seconds)

    thread = threading.Thread(target=writer, args=(1.5,))
    thread.start()
    other.wait(5)
    shown = Shown()
    with file_lock(lock, wait=shown):
        assert shown.told == [None, 1, "done"]
    thread.join()
    other.clear()
    thread = threading.Thread(target=writer, args=(3,))
    thread.start()
    other.wait(5)
    with pytest.raises(KeyboardInterrupt):
        with file_lock(lock, wait=Shown(leave_at=1)):
            pytest.fail("the lock was taken by a wait that ended")
    thread.join()


class _Told:
    """A core.turns.WaitShown that keeps what it was told: None as the wait begins, the whole seconds waited at each
    tick, "done" once it ended."""

    def __init__(self) -> None:
        self.told = []

    def tell(self, waited=None):
        self.told.append(None if waited is None else round(waited))

    def done(self):
        self.told.append("done")


def test_a_submissions_wait_for_a_turn_is_told_as_it_begins_every_second_and_done_before_the_store(stores,
                                                                                                    monkeypatch):
    """accept_submission's ``turn_wait``: told as the wait for a turn begins (the page's line from the start, not
    first after a second), every second, and done once the turn came, before the store's lock (free: done only)."""
    held = _Held(monkeypatch, "turn")
    timer = threading.Timer(1.4, held.release)
    timer.start()
    turn, lock = _Told(), _Told()
    try:
        report = submissions.accept_submission(BytesIO(_records_zip()), target=stores, turn_wait=turn,
                                               store_wait=lock)
    finally:
        timer.cancel()
        held.release()
    assert len(report.accepted) == 2
    assert turn.told == [None, 1, "done"] and lock.told == ["done"]


def test_the_hosts_own_submission_shows_its_wait_for_the_store_lock_too(stores, monkeypatch):
    """accept_submission(public=False) (jobs.submit: no turn) still tells its ``store_wait`` of a wait for the
    submissions store's lock, and its ``turn_wait`` is never told: it takes no turn."""
    held = _Held(monkeypatch, "lock", stores)
    timer = threading.Timer(1.4, held.release)
    timer.start()
    turn, lock = _Told(), _Told()
    try:
        report = submissions.accept_submission(BytesIO(_records_zip()), target=stores, public=False,
                                               turn_wait=turn, store_wait=lock)
    finally:
        timer.cancel()
        held.release()
    assert len(report.accepted) == 2 and len(_stored(stores)) == 2
    assert lock.told == [None, 1, "done"] and turn.told == []
