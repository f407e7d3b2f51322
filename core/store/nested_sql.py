"""The Parquet rules inside nested fields, in DuckDB SQL: what :func:`core.schema.validate_record` checks inside a
record's nested fields (objects, the list of OOD sets, accuracies in [0, 100], ood_change against its maps), for the
rows of a Parquet file, whose nested fields are JSON text. :func:`core.store.validate.reason_sql` adds them to its
scalar rules, and re-exports :func:`parsed_columns`.
"""
from __future__ import annotations

from core import schema


def parsed_columns(present: set[str]) -> dict[str, str]:
    """Hidden columns for the typed select of a Parquet read, which the nested rules of
    :func:`core.store.validate.reason_sql` read: each accuracy map's member JSON types and values as doubles,
    computed once per row for all the rules that read them (NULL where the text is missing or not JSON).
    ``present``: the columns the file has."""
    out = {}
    for name in schema.ACCURACY_MAPS:
        text = f'TRY_CAST("{name}" AS VARCHAR)'
        json_ok = f"{text} IS NOT NULL AND json_valid({text})"
        out[f"_types_{name}"] = (f"CASE WHEN {json_ok} THEN json_type({text}, '$.*') END" if name in present
                                 else "NULL::VARCHAR[]")
        out[f"_values_{name}"] = (f"CASE WHEN {json_ok} THEN TRY_CAST(json_extract({text}, '$.*') AS DOUBLE[]) END"
                                  if name in present else "NULL::DOUBLE[]")
    return out


def nested_shape_rules(tol: float, extra_column: str) -> list[tuple[str, str]]:
    """What :func:`core.schema.validate_record` checks inside nested fields, for Parquet rows (whose nested
    fields are JSON text, valid by the rules before these): objects where objects belong (the custom fields'
    column too), a list of names for ood_sets, accuracies in [0, 100], and ood_change equal to the mean OOD
    change. A Parquet row otherwise showed an ood_change its own ood_before/ood_after contradicted. The maps'
    members are read once (:func:`parsed_columns`), and a CASE condition stops at its first false term, so the
    key sets are compared only where the change disagrees. ``extra_column``: the custom fields' column
    (:data:`core.store.validate.EXTRA_COLUMN`)."""
    # JSON's null is no value, as a JSON record's null is (another tool's json.dumps(None) writes the text 'null')
    rules = [(f'"{name}" IS NOT NULL AND json_type("{name}") NOT IN (\'OBJECT\', \'NULL\')',
              f"field {name!r} must be a JSON object") for name in schema.OBJECT_FIELDS]
    # the custom fields' column holds them as one object (core.store.records.row_to_record raised on anything else
    # in the row it had loaded); 'null' holds none
    rules.append((f'"{extra_column}" IS NOT NULL AND json_type("{extra_column}") NOT IN (\'OBJECT\', \'NULL\')',
                  f"field {extra_column!r} must be a JSON object of custom fields"))
    # a list of anything but strings loaded from Parquet while its .json record was refused. Parsing every row's
    # list took 0.03-0.05 s at 100,000 runs, so a list that starts with a string and has no member after a comma
    # that starts otherwise than with '"' (nor ']': the trailing comma of the lenient text found later) is passed
    # unparsed; the rest are parsed ('$[*]' of a non-list is [], so one test covers the list and its members)
    rules.append(("ood_sets IS NOT NULL AND (NOT starts_with(ood_sets, '[\"') "
                  "OR regexp_matches(ood_sets, ',\\s*[^\\s\"\\]]')) "
                  "AND (json_type(ood_sets) NOT IN ('ARRAY', 'NULL') "
                  "OR NOT list_has_all(['VARCHAR'], json_type(ood_sets, '$[*]')))",
                  "field 'ood_sets' must be a list of dataset names"))
    for name in schema.ACCURACY_MAPS:
        types, values = f"_types_{name}", f"_values_{name}"
        rules.append((f'"{name}" IS NOT NULL AND (list_min({values}) < 0 OR list_max({values}) > 100 '
                      f"OR NOT list_has_all(['BIGINT', 'UBIGINT', 'DOUBLE', 'NULL'], {types})) "
                      f"AND NOT {_repeats_a_key(name)}",
                      f"field {name!r} must map each dataset to an accuracy in [0, 100]"))
    # as core.schema: a change over two different key sets is a number nothing in the row confirms. Cheapest term
    # first (the keys in the written order, equal in every row the grid writes): 0.03 s at 100,000 rows, not 0.13
    rules.append(('ood_change IS NOT NULL AND json_keys("ood_before") <> json_keys("ood_after") '
                  'AND json_type("ood_before") = \'OBJECT\' AND json_type("ood_after") = \'OBJECT\' '
                  'AND list_sort(list_distinct(json_keys("ood_before"))) '
                  '<> list_sort(list_distinct(json_keys("ood_after")))',
                  "field 'ood_change' is given but ood_before and ood_after name different OOD sets"))
    # over one key set, the mean of after[k] - before[k] is mean(after) - mean(before): no per-key lookups
    expected = "(list_avg(_values_ood_after) - list_avg(_values_ood_before))"
    rules.append((f"ood_change IS NOT NULL AND abs(ood_change - {expected}) > {tol} * greatest(1, abs({expected})) "
                  "AND NOT list_contains(_types_ood_before, 'NULL') AND NOT list_contains(_types_ood_after, 'NULL') "
                  'AND len(json_keys("ood_before")) > 0 '
                  'AND list_sort(json_keys("ood_before")) = list_sort(json_keys("ood_after")) '
                  f'AND NOT {_repeats_a_key("ood_before")}',
                  "field 'ood_change' must equal the mean OOD change of ood_before and ood_after"))
    return rules


def _repeats_a_key(name: str) -> str:
    """SQL: the JSON object in column ``name`` repeats a key. A .json record keeps a repeated key's last value,
    which these rules cannot single out from '$.*' (every value): such a row is left to the readers, as before
    the nested rules, rather than refused where its .json form loads. Checked last, only on rows a rule caught."""
    return f'(len(list_distinct(json_keys("{name}"))) < len(json_keys("{name}")))'
