"""Reference datasets that hold a sample's own images, left out of that sample's forecast.

A forecast is fitted on the stored runs of other datasets; a sample cut from one of those datasets (part of a
world task's train or test split, uploaded) would be forecast from that very dataset's runs: in sample, where
the measured leave-one-dataset-out error and coverage do not apply. :func:`leave_out_overlapping` hashes the
sample's decoded pixels (``core.data.overlap``), finds every reference dataset whose train or test split holds
one of them, and drops its runs, as leave-one-dataset-out evaluation drops a dataset; :func:`left_out_note`
says which and how many images. Exact pixels only: a re-encoded, resized or re-augmented copy is not found (an image
folder's files are hashed both as read and as an upload decodes them, thumbnailed to 256 pixels a side).

Only datasets at hand offline are checked: the generated worlds' tasks and ``folder:`` datasets whose folder
exists. Anything else (a torchvision set, an unknown name) is not checked, never downloaded, and the forecast
says so (:func:`unchecked_references`, :func:`unchecked_note`): it cannot vouch that such a dataset's runs are
out of sample. A split's digests are computed once per process (rendering the world v1 tasks' splits took 8 to 10 s
on two cores; the page starts it in the background when a 32x32 upload is checked, :func:`warm`, and waits for it
a bounded time, :func:`check_sample`'s ``wait_s``; a folder changed later is read again only by a new process), and a world task is rendered only for a sample holding an image of the
worlds' size (32x32) and, where the sample's class names are given, naming one of the task's classes (a copy
whose classes were all renamed is not looked for): the example sample (scene-kind, whose classes no other task
has) and other uploads pay nothing.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from core.data.errors import DatasetUnavailableError
from core.data.lazy import LazyImages
from core.data.overlap import image_hashes
from core.text import shorten
from core.turns import TICK_S

log = logging.getLogger(__name__)
WORLD_SOURCES = ("world", "world-v2")
#: The first words of the note a forecast carries when it left a reference dataset out.
NOTE_START = "Left out of the reference datasets"
#: The first words of the note a forecast carries when some of its reference datasets could not be checked.
UNCHECKED_START = "Not checked for your images"
_HASHES: dict[tuple[str, str], frozenset[bytes]] = {}
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_GUARD = threading.Lock()
# Digests not yet computed are computed by background threads, in the order asked: one for world tasks (rendered
# in seconds) and one for everything else (a folder may take minutes), so a folder one visitor's forecast queued
# does not hold up another's world task past the page's wait; more would only share the cores.
# {(name, split): the future digests} while queued or at work.
_PENDING: dict[tuple[str, str], Future] = {}
_QUEUES: dict[str, queue.SimpleQueue] = {"world": queue.SimpleQueue(), "files": queue.SimpleQueue()}
_WORKERS: dict[str, threading.Thread] = {}


def split_hashes(name: str, split: str) -> frozenset[bytes]:
    """The digests of the images of ``name``'s ``split`` (:func:`core.data.overlap.image_hashes`), computed once
    per process (a second caller while they are computed waits for them)."""
    key = (name, split)
    with _GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _HASHES:
            data = _split_to_hash(name, split)
            digests = set(image_hashes(data))
            if isinstance(data.images, LazyImages):  # an image folder's files: also as an upload decodes them
                digests.update(_as_uploaded(data.images.keys))
            _HASHES[key] = frozenset(digests)
        return _HASHES[key]


def _work(lane: queue.SimpleQueue) -> None:
    """A background thread: compute each split queued in ``lane`` (its digests, :func:`split_hashes`) into its
    future."""
    while True:
        key, future = lane.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(split_hashes(*key))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on it
                future.set_exception(exc)
        with _GUARD:
            _PENDING.pop(key, None)


def _lane(name: str) -> str:
    """Which background thread hashes ``name``'s splits: 'world' for a world task, 'files' for anything else (an
    unknown name too: its error is raised by the thread, into its future)."""
    from core.data.registry import get_dataset

    try:
        return "world" if get_dataset(name).source in WORLD_SOURCES else "files"
    except Exception:  # noqa: BLE001 - the hashing itself raises the error that names the problem
        return "files"


def digests_future(name: str, split: str) -> Future:
    """The digests of ``name``'s ``split`` as a future: done at once when computed before, else computed by a
    background thread (a daemon: a process may end without waiting for it) after what was asked before of the
    same kind (world tasks, or folders and other datasets: :func:`_lane`)."""
    key, lane = (name, split), _lane(name)
    with _GUARD:
        if key in _HASHES:
            done: Future = Future()
            done.set_result(_HASHES[key])
            return done
        if key not in _PENDING:
            _PENDING[key] = Future()
            _QUEUES[lane].put((key, _PENDING[key]))
        worker = _WORKERS.get(lane)
        if worker is None or not worker.is_alive():  # also for a key already queued: a dead worker's queue waits
            _WORKERS[lane] = threading.Thread(target=_work, args=(_QUEUES[lane],), name=f"reference-overlap-{lane}",
                                              daemon=True)
            _WORKERS[lane].start()
        return _PENDING[key]


def _split_to_hash(name: str, split: str) -> Any:
    """``name``'s ``split`` for its digests only: a world task's rendered afresh, not through the worlds' per-process
    split cache (``core.data.world``, ``core.data.world2``), which would keep its images in a server for good (~8 MB
    a task, where the digests take 16 bytes an image); anything else as ``core.data.registry.load_split`` reads it."""
    from core.data.registry import get_dataset, load_split

    source = get_dataset(name).source
    if source not in WORLD_SOURCES or split not in ("train", "test"):
        return load_split(name, split)
    if source == "world":
        from core.data import world as module

        module.get_world_task(name)  # ValueError naming the known tasks
    else:
        from core.data.world2 import suites as module

        module.get_task(name)
    generate = module._generate_split
    return getattr(generate, "__wrapped__", generate)(name, split)  # the cache's own function: nothing kept


def _as_uploaded(keys: Sequence[tuple]) -> list[bytes]:
    """The digests of image files (:func:`core.data.lazy.file_key` keys) as an upload or ``jobs.forecast`` decodes
    them (``core.upload``: at most ``max_side`` pixels a side, a JPEG drafted at a reduced scale), one at a time: a
    sample cut from a folder of larger images holds those pixels, not the files' own. A file an upload would refuse
    is left out."""
    from core.upload import DEFAULT_LIMITS, _decode_image, _Skip

    def decoded():
        for path, *_ in keys:
            try:
                yield _decode_image(Path(path).read_bytes(), DEFAULT_LIMITS)
            except (_Skip, OSError) as exc:  # an upload would skip it too
                log.debug("%s not hashed as an upload decodes it: %s", path, exc)
    return image_hashes(decoded())


def _world_side() -> int:
    from core.data.world_render import SIZE  # both worlds draw SIZE x SIZE images (world2 renders with it)

    return SIZE


def _source_or_why(name: str) -> tuple[str | None, str | None]:
    """(``name``'s registry source, None) when its images can be checked offline (a world task, an existing
    folder); (None, why not) otherwise."""
    from core.data.registry import get_dataset

    try:
        source = get_dataset(name).source
    except ValueError:
        return None, "not a registered dataset"
    if source in WORLD_SOURCES or (source == "folder" and Path(name[len("folder:"):]).is_dir()):
        return source, None
    return None, "its folder is not here" if source == "folder" else f"a {source} dataset, not read offline"


def not_checked(name: str) -> str | None:
    """Why ``name``'s images cannot be checked offline, or None when they can (a world task, an existing folder)."""
    return _source_or_why(name)[1]


def _sizes(images: Sequence[Any]) -> set[tuple[int, int]]:
    """The (height, width) of each image: a PIL image's size or an array's first two axes."""
    if isinstance(images, np.ndarray):
        return {tuple(images.shape[1:3])}
    return {(im.size[1], im.size[0]) if hasattr(im, "mode") else tuple(np.shape(im)[:2]) for im in images}


def _class_key(name: object) -> str:
    """A class name as folders and prompts may spell it alike ('Satellite_Photo' and 'satellite photo')."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _world_classes(name: str, source: str) -> set[str]:
    """The class names of the world task ``name`` (no rendering), as :func:`_class_key` spells them."""
    if source == "world":
        from core.data.world import get_world_task

        return {_class_key(c) for c in get_world_task(name).class_names}
    from core.data.world2.suites import get_task

    return {_class_key(c) for c in get_task(name).class_names}


def _to_check(images: Sequence[Any] | None, datasets: Sequence[str], say: bool,
              class_names: Sequence[str] | None = None) -> list[str]:
    """The ``datasets`` that could hold one of ``images`` (None: any image): those read offline (the others logged
    when ``say``), a world task only when a sample image has the worlds' size and, with ``class_names`` (the
    sample's), when it names one of them."""
    sizes, out = {(_world_side(),) * 2} if images is None else _sizes(images) if len(images) else set(), []
    classes = None if class_names is None else {_class_key(c) for c in class_names}
    for name in datasets:
        source, why = _source_or_why(name)
        if why is not None:
            if say:
                log.info("reference dataset %s not checked for the sample's images: %s", name, why)
            continue
        if source not in WORLD_SOURCES:
            out.append(name)
        elif (_world_side(),) * 2 in sizes and (classes is None or classes & _world_classes(name, source)):
            out.append(name)
    return out


@dataclass
class OverlapCheck:
    """What :func:`check_sample` found: ``found`` {dataset: how many of the sample's images its train or test
    split holds} for those holding any, ``pending`` {dataset: why it was not checked: not read in time, or a split
    that could not be read}."""
    found: dict[str, int] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)


def _wait(pair: Sequence[Future], deadline: float | None, while_waiting: Callable[[float], None] | None,
          start: float) -> None:
    """Wait for ``pair`` until ``deadline`` (None: until done), calling ``while_waiting(seconds since start)`` every
    :data:`core.turns.TICK_S` meanwhile (what it raises ends the wait: a page's visitor left)."""
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        step = left if while_waiting is None else TICK_S if left is None else min(TICK_S, left)
        wait_for(pair, timeout=step)
        if all(f.done() for f in pair) or (left is not None and left <= step):
            return
        while_waiting(time.monotonic() - start)


def check_sample(images: Sequence[Any], datasets: Sequence[str], *, class_names: Sequence[str] | None = None,
                 wait_s: float | None = None, while_waiting: Callable[[float], None] | None = None) -> OverlapCheck:
    """Which ``datasets`` hold some of ``images``, in their order. A world task is looked at only when a sample
    image has the worlds' size and, given the sample's ``class_names``, when it shares one; a dataset that cannot
    be checked offline (:func:`not_checked`) is logged and skipped, one with a split that cannot be read (and no
    image of the sample in the other) is in ``pending`` with the error.
    ``wait_s``: the most seconds to wait for splits not hashed yet (None: as long as it takes); one not ready by
    then is in ``pending``, and goes on being hashed in the background for a later check. ``while_waiting``: called
    with the seconds waited every :data:`core.turns.TICK_S` of that wait (:func:`_wait`)."""
    if wait_s is not None and not wait_s >= 0:
        raise ValueError(f"wait_s must be a number of seconds >= 0 or None, got {wait_s!r}")
    start = time.monotonic()
    deadline = None if wait_s is None else start + wait_s
    names = _to_check(images, datasets, say=True, class_names=class_names)
    futures = {name: (digests_future(name, "train"), digests_future(name, "test")) for name in names}
    digests: list[bytes] | None = None
    check = OverlapCheck()
    for name, pair in futures.items():
        _wait(pair, deadline, while_waiting, start)
        if not all(f.done() for f in pair):
            check.pending[name] = (f"its images were not read in the {wait_s:g} s a forecast waits for them in all; "
                                   "they are being read, or wait their turn, so a forecast made in a while checks it")
            continue
        held, unread = frozenset(), []
        for future in pair:
            try:
                held |= future.result()
            except (ValueError, OSError, DatasetUnavailableError) as exc:  # a folder without a split, unreadable files
                unread.append(str(exc))
        digests = image_hashes(images) if digests is None else digests
        if n := sum(d in held for d in digests):  # a split read holds some: left out, whatever the other holds
            check.found[name] = n
        elif unread:  # not vouched for: said in the forecast, not only in a log line
            log.info("reference dataset %s not checked for the sample's images: %s", name, "; ".join(unread))
            check.pending[name] = f"its images could not be read: {shorten('; '.join(unread), 160)}"
    return check


def sample_overlaps(images: Sequence[Any], datasets: Sequence[str], *,
                    class_names: Sequence[str] | None = None) -> dict[str, int]:
    """{dataset: how many of ``images`` its train or test split holds} for the ``datasets`` that hold any, in
    their order, waiting for every split as long as it takes (:func:`check_sample`'s ``found``)."""
    return check_sample(images, datasets, class_names=class_names).found


def warm(images: Sequence[Any] | None, datasets: Sequence[str], *,
         class_names: Sequence[str] | None = None) -> list[Future]:
    """Queue, for the background thread, the split digests :func:`check_sample` will read for these ``images``
    (None: any), ``class_names`` and ``datasets``; their futures (none where nothing is left to compute: a sample
    no world task can hold, digests computed already)."""
    names = _to_check(images, datasets, say=False, class_names=class_names)
    futures = [digests_future(name, split) for name in names for split in ("train", "test")]
    return [f for f in futures if not f.done()]


def left_out_note(left_out: dict[str, int], n_images: int) -> str:
    """The sentence saying which reference datasets were left out and how many of the sample's images each holds."""
    held = "; ".join(f"{name} (holds {n} of your {n_images} images)" for name, n in left_out.items())
    return (f"{NOTE_START}: {held}. Your sample shares images with these datasets, so their runs would make the "
            "forecast in-sample; it is made from the other reference datasets, as leave-one-dataset-out evaluation "
            "makes each of its forecasts. A coverage measured on more reference datasets than this forecast has "
            "is not shown beside it.")


def unchecked_note(unchecked: dict[str, str]) -> str:
    """The sentence naming the reference datasets not checked for the sample's images, grouped by why: what that
    means first, as the page cuts a long note (``core.text.plain``) at its end. For an embeddings sample (every
    reason :data:`NPZ_REASON`) that none was looked for, and why, comes before their names too."""
    if unchecked and set(unchecked.values()) == {NPZ_REASON}:
        return (f"{UNCHECKED_START} ({NPZ_REASON} in any of the {len(unchecked)} reference datasets; if it was cut "
                "from one of them, its forecast is partly in-sample and its measured error and coverage do not "
                f"apply): {', '.join(unchecked)}.")
    by_reason: dict[str, list[str]] = {}
    for name, why in unchecked.items():
        by_reason.setdefault(why, []).append(name)
    names = "; ".join(f"{', '.join(group)} ({why})" for why, group in by_reason.items())
    return (f"{UNCHECKED_START} (only the generated worlds' tasks and image folders at hand are checked, once their "
            "images are read; if your sample was cut from one of the datasets named here, its forecast is partly "
            f"in-sample and its measured error and coverage do not apply): {names}.")


#: Why no reference dataset is checked for an embeddings (.npz) sample's images.
NPZ_REASON = "your sample is embeddings: it has no images to look for"


def reference_datasets(runs_df: pd.DataFrame, model: str, pretrained: str) -> list[str]:
    """The reference datasets of (model, pretrained) in ``runs_df``, in their order (none without those columns)."""
    if runs_df.empty or not {"model", "pretrained", "dataset"} <= set(runs_df.columns):
        return []
    mine = runs_df[(runs_df["model"] == model) & (runs_df["pretrained"] == pretrained)]
    return list(dict.fromkeys(mine["dataset"].dropna().astype(str)))


def unchecked_references(runs_df: pd.DataFrame, model: str, pretrained: str) -> dict[str, str]:
    """{dataset: why it cannot be checked offline (:func:`not_checked`)} for the reference datasets of
    (model, pretrained) in ``runs_df``, in their order; empty when every one can be checked."""
    names = reference_datasets(runs_df, model, pretrained)
    return {name: why for name in names if (why := not_checked(name)) is not None}


def embeddings_unchecked(runs_df: pd.DataFrame, model: str, pretrained: str) -> dict[str, str]:
    """{dataset: :data:`NPZ_REASON`} for every reference dataset of (model, pretrained): an embeddings sample
    cannot be looked for in any of them."""
    return dict.fromkeys(reference_datasets(runs_df, model, pretrained), NPZ_REASON)


def say_unchecked(res: Any, unchecked: dict[str, str]) -> None:
    """Say on ``res`` (a ``core.predict.ForecastResult``) which of its reference datasets were not checked: its
    ``not_checked`` and, when there are any, a note after the left-out one."""
    res.not_checked = dict(unchecked)
    if unchecked:
        at = 1 if res.notes and res.notes[0].startswith(NOTE_START) else 0
        res.notes.insert(at, unchecked_note(unchecked))


def say_left_out(res: Any, left_out: dict[str, int], n_images: int) -> None:
    """Say on ``res`` (a ``core.predict.ForecastResult``) that ``left_out`` were left out of its references: its
    ``left_out``, the note first among its notes, and where too few runs remain for a forecast, the reason in its
    message (which else asked for runs the store holds: the grid command shown makes none of them anew)."""
    res.left_out, res.notes = dict(left_out), [left_out_note(left_out, n_images), *res.notes]
    if res.message:
        one = len(left_out) == 1
        res.message += (f" Of the stored datasets, {', '.join(left_out)} {'was' if one else 'were'} left out as "
                        f"{'it holds' if one else 'they hold'} some of your images (see the note): a forecast of this "
                        "sample needs runs on other datasets.")


def leave_out_overlapping(runs_df: pd.DataFrame, images: Sequence[Any], model: str, pretrained: str, *,
                          class_names: Sequence[str] | None = None, wait_s: float | None = None,
                          pending: dict[str, str] | None = None,
                          while_waiting: Callable[[float], None] | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """``runs_df`` without the runs of every reference dataset of (model, pretrained) that holds any of ``images``
    (whose classes are ``class_names``, as :func:`check_sample` takes them, waiting ``wait_s``, calling
    ``while_waiting``), and {dataset:
    images of the sample it holds} (empty: ``runs_df`` itself). ``pending``, when given, gets the datasets not
    checked (not read in time, or unreadable), with why."""
    check = check_sample(images, reference_datasets(runs_df, model, pretrained), class_names=class_names,
                         wait_s=wait_s, while_waiting=while_waiting)
    if pending is not None:
        pending.update(check.pending)
    if not check.found:
        return runs_df, {}
    log.info("%s", left_out_note(check.found, len(images)))
    return runs_df[~runs_df["dataset"].isin(list(check.found))], check.found
