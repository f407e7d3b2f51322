"""A corpus of hostile files dropped into a results folder, generated at test time.

``build_record_corpus(dir)`` writes each case as a file (or link, FIFO, sparse file) into its own
folder under ``dir`` and returns a RecordCase per case. Expected outcome: 'skip' (load_runs leaves
the record out and names it with a reason matching ``match``) or 'ok' (a control: it loads).
``ingest`` says whether jobs.ingest of the same file must refuse it (None: not an ingest case).
The good fixture records are the reference: every case is loaded beside them and they must all load.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from tests.fixtures import make_fixture_records

MiB = 1 << 20


@dataclass(frozen=True)
class RecordCase:
    name: str
    path: Path          # the folder holding the case's file(s)
    expect: str         # 'skip' or 'ok'
    match: str | None = None
    ingest: bool | None = None  # True: ingest must refuse it too


_CASES: list[tuple[str, str, str | None, bool | None, Callable[[Path], None]]] = []


def case(name: str, expect: str = "skip", match: str | None = None, ingest: bool | None = True):
    def register(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        _CASES.append((name, expect, match, ingest, fn))
        return fn
    return register


def base(run_id: str = "hostile-1", **changes: Any) -> dict[str, Any]:
    """A valid record (a fixture one under a new run_id) with ``changes`` applied."""
    rec = copy.deepcopy(make_fixture_records(n_datasets=1, methods=("full",))[0])
    rec["run_id"] = run_id
    rec.update(changes)
    return rec


def write_json(folder: Path, rec: Any, name: str = "hostile-1.json") -> None:
    (folder / name).write_text(json.dumps(rec), encoding="utf-8")


def json_case(name: str, match: str, **changes: Any) -> None:
    case(name, "skip", match)(lambda folder: write_json(folder, base(**changes)))


def raw_case(name: str, match: str, raw: bytes, ingest: bool | None = True) -> None:
    case(name, "skip", match, ingest)(lambda folder: (folder / "hostile-1.json").write_bytes(raw))


def parquet_case(name: str, match: str, table: Callable[[], pa.Table]) -> None:
    case(name, "skip", match)(lambda folder: pq.write_table(table(), folder / "hostile.parquet"))


def record_table(**columns: pa.Array) -> pa.Table:
    """The base record as a one-row Parquet table of the store's layout, ``columns`` replaced."""
    from core.store.records import ARROW_SCHEMA, flatten

    table = pa.Table.from_pylist([flatten(base())], schema=ARROW_SCHEMA)
    for name, array in columns.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, array) if index >= 0 else table.append_column(name, array)
    return table


def build_record_corpus(directory: Path | str, names: list[str] | None = None) -> list[RecordCase]:
    directory = Path(directory)
    out = []
    for name, expect, match, ingest, build in _CASES:
        if names is None or name in names:
            folder = directory / name
            folder.mkdir(parents=True, exist_ok=True)
            build(folder)
            out.append(RecordCase(name, folder, expect, match, ingest))
    return out


def record_case_names() -> list[str]:
    return [c[0] for c in _CASES]


# ------------------------------------------------------------------ the cases, then more
json_case("seed-10-to-30", "'seed' must lie", seed=10**30)
json_case("schema-version-2-to-63", "'schema_version' must lie", schema_version=2**63)
raw_case("float-400-digits", "zs_acc", json.dumps(base()).replace(
    '"zs_acc": 70.0', '"zs_acc": 1' + "0" * 400 + ".5").encode())
raw_case("int-5000-digits", "invalid JSON|digits", json.dumps(base()).replace(
    '"seed": 0', '"seed": 1' + "0" * 5000).encode())
raw_case("nested-980-deep", "nested", json.dumps(base(config=None)).replace(
    '"config": null', '"config": ' + "[" * 980 + "]" * 980).encode())
raw_case("nested-100000-deep", "nested", json.dumps(base(config=None)).replace(
    '"config": null', '"config": ' + "[" * 100_000 + "]" * 100_000).encode())
json_case("accuracy-minus-50", "'zs_acc' must lie", zs_acc=-50.0, id_gain=None, norm_gain=None)
json_case("accuracy-250", "'ft_acc' must lie", ft_acc=250.0, id_gain=None, norm_gain=None)
json_case("id-gain-1400", "'id_gain' must lie", id_gain=1400.0)
json_case("iimm-1e308", "'iimm' must lie", iimm=1e308)
json_case("iimm-above-1", "'iimm' must lie", iimm=1.5)
json_case("inter-modal-below-minus-1", "'inter_modal' must lie", inter_modal=-3.0)
json_case("id-gain-inconsistent", "id_gain.*must equal", id_gain=30.0)
json_case("norm-gain-inconsistent", "norm_gain.*must equal", norm_gain=0.9)
json_case("ood-change-inconsistent", "ood_change.*must equal", ood_change=-40.0)
# an ood_change over two different sets of OOD datasets is a number nothing in the record confirms
json_case("ood-sets-differ", "ood_before and ood_after name different OOD sets",
          ood_after={"ood-a": 58.0, "ood-c": 48.0}, ood_change=-2.0)
json_case("ood-after-250", r"ood_after\[", ood_after={"ood-a": 250.0, "ood-b": 50.0}, ood_change=None)
json_case("status-bogus", "status", status="bogus")
json_case("run-id-traversal", "run_id", run_id="../../etc/passwd")
json_case("run-id-hidden", "run_id", run_id=".hidden")
# "$" also matches before a final newline: the .json path stored it (as "hostile-1\n.json"), Parquet refused it
json_case("run-id-ends-in-a-newline", "run_id", run_id="hostile-1\n")
json_case("model-name-10k-chars", "'model' is 10000 characters", model="M" * 10_000)
json_case("error-100k-chars", "'error' is 100000 characters", error="E" * 100_000)
json_case("created-at-huge", "'created_at'", created_at="2" * 500)
json_case("seed-is-true", "'seed' must be an integer", seed=True)
json_case("seed-negative", "'seed' must lie", seed=-1)
json_case("seed-float", "'seed' must be an integer", seed=1.5)
json_case("zs-acc-string", "'zs_acc' must be a number", zs_acc="70")
json_case("ok-without-ft-acc", "needs field 'ft_acc'", ft_acc=None, id_gain=None, norm_gain=None,
          ood_change=None)
json_case("missing-model", "required field 'model'", model=None)
json_case("provenance-a-list", "'provenance' must be a JSON object", provenance=[1, 2])
json_case("ood-sets-of-numbers", "'ood_sets' must be a list", ood_sets=[1, 2])
json_case("config-too-large", "'config' is .* characters", config={"blob": "x" * 70_000})
json_case("extra-field-deep", "nested", payload=[[[[[[[[[[[1]]]]]]]]]]])
json_case("too-many-extra-fields", "at most 32 extra fields", **{f"x{i}": i for i in range(40)})
raw_case("nan-literal-top-level", "'iimm' must be finite",
         json.dumps(base()).replace('"iimm": 0.2', '"iimm": NaN').encode())
raw_case("infinity-literal", "'zs_acc'", json.dumps(base()).replace('"zs_acc": 70.0', '"zs_acc": Infinity').encode())
raw_case("not-json", "invalid JSON", b'{"run_id": "hostile-1", ')
raw_case("json-array", "must be a JSON object", b"[1, 2, 3]")
raw_case("json-string", "must be a JSON object", b'"hello"')
raw_case("non-utf8-bytes", "not UTF-8", json.dumps(base()).encode().replace(b"worldclip", b"w\xff\xfeorld"))
raw_case("lone-surrogate-in-model", "not valid Unicode", json.dumps(base()).replace(
    '"worldclip-tiny"', '"world\\ud800clip"', 1).encode())  # valid JSON and UTF-8; no UTF-8 string holds it
raw_case("lone-surrogate-in-ood-set-name", "not valid Unicode", json.dumps(base()).replace(
    '"ood-a"', '"ood-\\udfff"').encode())
raw_case("utf16-file", "not UTF-8", json.dumps(base()).encode("utf-16"))
raw_case("zero-byte-record", "invalid JSON", b"")
raw_case("null-bytes", "invalid JSON", b"\x00" * 64)


@case("record-200-mb", "skip", "limit is")
def _big(folder: Path) -> None:
    with open(folder / "hostile-1.json", "wb") as fh:  # sparse: no disk is used
        fh.truncate(200 * MiB)


@case("fifo-named-json", "skip", "not a regular file", ingest=True)
def _fifo(folder: Path) -> None:
    os.mkfifo(folder / "hostile-1.json")


@case("symlink-to-dev-zero", "skip", "symbolic link", ingest=True)
def _dev_zero(folder: Path) -> None:
    os.symlink("/dev/zero", folder / "hostile-1.json")


@case("symlink-out-of-folder", "skip", "symbolic link", ingest=None)
def _outside(folder: Path) -> None:
    outside = folder.parent / "outside-target.json"
    write_json(folder.parent, base("outside-1"), outside.name)
    os.symlink(outside, folder / "outside-1.json")


@case("symlink-inside-folder", "ok", ingest=None)
def _inside(folder: Path) -> None:
    (folder / "sub").mkdir()
    write_json(folder / "sub", base("inside-1"), "real.json")
    os.symlink(folder / "sub" / "real.json", folder / "inside-1.json")


@case("conflicting-shipped-run-id", "skip", "different content", ingest=True)
def _conflict(folder: Path) -> None:
    rec = make_fixture_records(n_datasets=1, methods=("full",))[0]  # same run_id as a fixture run
    rec.update(ft_acc=99.9, id_gain=None, norm_gain=None)
    write_json(folder, rec, "conflict.json")


@case("same-run-same-content", "ok", ingest=False)
def _same(folder: Path) -> None:
    write_json(folder, make_fixture_records(n_datasets=1, methods=("full",))[0], "again.json")


@case("valid-control", "ok", ingest=False)
def _valid(folder: Path) -> None:
    write_json(folder, base("fine-1"))


@case("markdown-model-name", "ok", ingest=False)
def _markdown(folder: Path) -> None:
    write_json(folder, base("markdown-1", model="[click](http://evil.example/x) ![i](http://evil.example/i.png)"))


@case("blank-pretrained-tag", "ok", ingest=False)
def _blank_tag(folder: Path) -> None:
    # the schema refuses only an empty tag; core.models.spec_for refuses a blank one for a run to be made, and the
    # model cards of every page (cards.untrained_models, model_card) raised on it
    write_json(folder, base("blank-tag-1", pretrained=" "))


parquet_case("parquet-uint64-seed", "'seed' has the wrong type",
             lambda: record_table(seed=pa.array([2**64 - 1], pa.uint64())))
parquet_case("parquet-status-bogus", "status", lambda: record_table(status=pa.array(["bogus"])))
parquet_case("parquet-run-id-traversal", "run_id", lambda: record_table(run_id=pa.array(["../../etc/passwd"])))
parquet_case("parquet-iimm-inf", "'iimm' must lie", lambda: record_table(iimm=pa.array([float("inf")])))
parquet_case("parquet-iimm-nan", "'iimm' must lie", lambda: record_table(iimm=pa.array([float("nan")])))
parquet_case("parquet-accuracy-250", "'ft_acc' must lie", lambda: record_table(
    ft_acc=pa.array([250.0]), id_gain=pa.array([None], pa.float64()), norm_gain=pa.array([None], pa.float64())))
parquet_case("parquet-id-gain-inconsistent", "id_gain", lambda: record_table(id_gain=pa.array([50.0])))
parquet_case("parquet-seed-as-text", "'seed' has the wrong type", lambda: record_table(seed=pa.array(["seven"])))
case("parquet-provenance-struct", "skip", "'provenance' is not JSON", ingest=False)(  # ingest reads structs
    lambda folder: pq.write_table(record_table(provenance=pa.array([{"a": 1}])), folder / "hostile.parquet"))
parquet_case("parquet-config-huge", "'config' is not JSON", lambda: record_table(
    config=pa.array(["[" * 40_000 + "]" * 40_000])))
parquet_case("parquet-model-10k", "'model' is longer", lambda: record_table(model=pa.array(["M" * 10_000])))
parquet_case("parquet-missing-run-id", "run_id", lambda: record_table(run_id=pa.array([None], pa.string())))
parquet_case("parquet-missing-status-column", "status", lambda: record_table().drop_columns(["status"]))
parquet_case("parquet-schema-version-huge", "schema_version", lambda: record_table(
    schema_version=pa.array([2**62], pa.int64())))
# the nested rules the JSON path applies (the Parquet path showed an ood_change its own OOD tables contradicted)
parquet_case("parquet-ood-change-inconsistent", "ood_change.*must equal", lambda: record_table(
    ood_change=pa.array([-40.0])))
parquet_case("parquet-ood-sets-differ", "ood_before and ood_after name different OOD sets", lambda: record_table(
    ood_after=pa.array(['{"ood-a": 58.0, "ood-c": 48.0}']), ood_change=pa.array([-2.0])))
parquet_case("parquet-ood-after-250", "'ood_after' must map", lambda: record_table(
    ood_after=pa.array(['{"ood-a": 250.0, "ood-b": 50.0}']), ood_change=pa.array([None], pa.float64())))
parquet_case("parquet-ood-before-a-string", "'ood_before' must map", lambda: record_table(
    ood_before=pa.array(['{"ood-a": "60", "ood-b": 50.0}']), ood_change=pa.array([None], pa.float64())))
parquet_case("parquet-ood-before-not-json", "'ood_before' is not JSON text", lambda: record_table(
    ood_before=pa.array(['{"ood-a": 60'])))  # parsed before the rules run: must not fail the whole file
parquet_case("parquet-provenance-a-list", "'provenance' must be a JSON object", lambda: record_table(
    provenance=pa.array(["[1, 2]"])))


@case("parquet-corrupt", "skip", "unreadable Parquet")
def _corrupt(folder: Path) -> None:
    (folder / "broken.parquet").write_bytes(b"PAR1 not really a parquet file PAR1")


@case("parquet-deep-json-cell", "skip", "'config' is nested deeper than 8 levels", ingest=True)
def _deep_cell(folder: Path) -> None:
    # Valid JSON text under the size cap but nested 5,000 deep: its .json record is refused, so the row is skipped
    # (it loaded until readers, which parse with a depth cap, met it; jobs.predictors' json.loads crashed on it).
    pq.write_table(record_table(run_id=pa.array(["deep-cell"]), config=pa.array(['{"a": ' + "[" * 5000 + "]" * 5000 + "}"])),
                   folder / "deep.parquet")
