"""Checks that a Flux query names only what the bridge writes (deploy/dashboards/schema.py).

Flux has no Python parser, so this reads the forms the generated queries use: measurement
and field filters (`r._measurement == "..."`, `r._field == "..."`), column references
(`r.node`, `r["node"]`), tag comparisons with literal values, `columns: [...]` lists, the
bucket, and `schema.tagValues(tag: ...)`. Anything else a query names is reported.
"""

from __future__ import annotations

import re
from types import ModuleType

MEASUREMENT = re.compile(r'\br\._measurement\s*==\s*"([^"]*)"')
FIELD = re.compile(r'\br\._field\s*==\s*"([^"]*)"')
COLUMN = re.compile(r'\br(?:\.([A-Za-z_]\w*)|\[\s*"([^"]*)"\s*\])')
COMPARISON = re.compile(r'\br(?:\.([A-Za-z_]\w*)|\[\s*"([^"]*)"\s*\])\s*(?:==|!=)\s*"([^"]*)"')
BUCKET = re.compile(r'\bbucket:\s*"([^"]*)"')
FROM = re.compile(r"\b(?:from|schema\.tagValues)\(")
TAG_VALUES = re.compile(r'schema\.tagValues\([^)]*?\btag:\s*"([^"]*)"')
COLUMN_LIST = re.compile(r"\bcolumns:\s*\[([^\]]*)\]")
# pivot(columnKey: ["_measurement"]) turns each measurement into a column of that name.
PIVOT_ON_MEASUREMENT = re.compile(r'pivot\([^)]*columnKey:\s*\[\s*"_measurement"\s*\]')


def problems(query: str, schema: ModuleType) -> list[str]:
    """Everything the query names that the schema does not have (empty when it is clean)."""
    found: list[str] = []
    known = schema.MEASUREMENTS

    measurements = MEASUREMENT.findall(query)
    found += [f"unknown measurement {m!r}" for m in measurements if m not in known]
    scope = [m for m in measurements if m in known] or list(known)

    buckets = BUCKET.findall(query)
    if len(buckets) != len(FROM.findall(query)):
        found.append("a from()/tagValues() without a literal bucket")
    found += [f"unknown bucket {b!r}" for b in buckets if b != schema.BUCKET]

    fields = FIELD.findall(query)
    found += [f"unknown field {f!r}" for f in fields if f != schema.FIELD]
    if "from(" in query and not fields:
        # Every point has the one field; filtering on it keeps a future second field out.
        found.append(f'from() without a filter on r._field == "{schema.FIELD}"')

    columns = set(schema.FLUX_COLUMNS)
    for m in scope:
        columns |= known[m]["tags"]
    if PIVOT_ON_MEASUREMENT.search(query):
        columns |= set(scope)

    for dotted, quoted in COLUMN.findall(query):
        name = dotted or quoted
        if name not in columns:
            found.append(f"unknown column r.{name}")
    for listed in COLUMN_LIST.findall(query):
        for name in re.findall(r'"([^"]*)"', listed):
            if name not in columns:
                found.append(f"unknown column {name!r} in columns: [...]")

    for dotted, quoted, value in COMPARISON.findall(query):
        tag = dotted or quoted
        if tag == "unit":
            units = {known[m]["unit"] for m in scope}
            if value not in units:
                found.append(f"unit {value!r} is not the unit of {sorted(scope)}")
        elif tag in schema.TAG_VALUES and value not in schema.TAG_VALUES[tag]:
            found.append(f"tag {tag} never has the value {value!r}")

    found += [f"unknown tag {t!r}" for t in TAG_VALUES.findall(query) if t not in schema.ALL_TAGS]
    return found
