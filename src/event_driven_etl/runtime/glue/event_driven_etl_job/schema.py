"""Stage 5, type and settle the schema: the table keeps one type per column across runs
(``<output_path>_schema.json`` or the catalog table); this run's new columns are typed from
its data, objects whose values do not fit the table are refused, and the schema is committed
only for rows that were written (the write stage runs inside :func:`settle_schema`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Protocol

from .arguments import CatalogTable
from .column_types import column_type, fits, join_types, spark_type_name
from .errors import JobInputError
from .read import Group
from .storage import Storage

SCHEMA_FILE = "_schema.json"


@dataclass
class TableSchema:
    """The output table's columns and types, kept in ``<output_path>_schema.json``."""

    columns: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        fields = [{"name": n, "type": t} for n, t in self.columns.items()]
        return json.dumps({"columns": fields}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> TableSchema:
        return cls({c["name"]: c["type"] for c in json.loads(text)["columns"]})


def plan_columns(
    groups: Sequence[Group], table: TableSchema, bad: dict[str, str]
) -> tuple[TableSchema, dict[str, str]]:
    """The table after this run (new columns typed from the data), and the objects whose
    values do not fit the table's existing types (added to ``bad``)."""
    for group in groups:
        for uri, stats in group.stats.items():
            if uri in bad or stats.corrupt:
                continue
            for name, data_type in group.columns.items():
                target = table.columns.get(name)
                if target is None or not stats.non_null.get(name):
                    continue
                mask = stats.masks.get(name)
                source = spark_type_name(data_type)
                if not fits(source, target, mask):
                    found = column_type(data_type, mask)
                    found = "text" if found == "string" and source == "string" else found
                    bad[uri] = (
                        f"column {name!r} holds {found} values that are not {target} "
                        "(the table's type for it)"
                    )
                    break
    new_types: dict[str, str] = {}
    for group in groups:
        for name, data_type in group.columns.items():
            if name in table.columns:
                continue
            for uri, stats in group.stats.items():
                if uri in bad or not stats.non_null.get(name):
                    continue  # no values yet: the column is added when it first has one
                found = column_type(data_type, stats.masks.get(name))
                new_types[name] = join_types(new_types.get(name, found), found)
    return TableSchema({**table.columns, **new_types}), bad


PARQUET_SERDE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}


def table_input(name: str, location: str, schema: TableSchema) -> dict[str, Any]:
    """The Glue table for the output: the schema's columns (Spark's type names are Hive's),
    the metadata columns, the ``ingestion_date`` partition, projected for Athena."""
    columns = [{"Name": n, "Type": t} for n, t in schema.columns.items()]
    columns += [
        {"Name": "_source_object", "Type": "string"},
        {"Name": "_ingested_at", "Type": "timestamp"},
    ]
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {"Columns": columns, "Location": location, **PARQUET_SERDE},
        "PartitionKeys": [{"Name": "ingestion_date", "Type": "string"}],
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            # Athena: partitions are computed, never listed or registered.
            "projection.enabled": "true",
            "projection.ingestion_date.type": "date",
            "projection.ingestion_date.format": "yyyy-MM-dd",
            "projection.ingestion_date.range": "2000-01-01,NOW",
            "projection.ingestion_date.interval": "1",
            "projection.ingestion_date.interval.unit": "DAYS",
            "storage.location.template": f"{location}ingestion_date=${{ingestion_date}}/",
        },
    }


_METADATA_TYPES = {"_source_object": "string", "_ingested_at": "timestamp"}
SCHEMA_ATTEMPTS = 5
"""How often a run re-reads and re-plans the schema when another run changed it first."""


class SchemaConflictError(Exception):
    """Another run changed the table's schema since this run read it."""


class FileSchemaStore:
    """The table's schema in ``<output_path>_schema.json`` (no catalog table kept).

    Hadoop's FileSystem has no conditional write: two runs adding columns at the same moment
    can race here (documented); the catalog store below cannot.
    """

    def __init__(self, storage: Storage, output: str) -> None:
        self._storage, self._uri = storage, f"{output}{SCHEMA_FILE}"

    def load(self) -> tuple[TableSchema, Any]:
        text = self._storage.read_text(self._uri)
        return (TableSchema.from_json(text) if text else TableSchema()), None

    def commit(self, schema: TableSchema, _version: Any) -> None:
        self._storage.write_text(self._uri, schema.to_json())


class CatalogSchemaStore:
    """The table's schema is the Glue Data Catalog table's: created on the first run, changed
    with the version read (Glue refuses a stale ``VersionId``), so concurrent runs agree."""

    def __init__(
        self, catalog: CatalogTable, location: str, *, only_at_location: bool = False
    ) -> None:
        """``only_at_location``: an existing table stored elsewhere is not this pipeline's
        (table routing: a folder named like another pipeline's or a crawler's table in a
        database you brought) and is never rewritten: :meth:`load` raises instead."""
        self._catalog, self._location = catalog, location
        self._only_at_location = only_at_location
        self._glue = catalog.client()

    def load(self) -> tuple[TableSchema, Any]:
        try:
            response = self._glue.get_table(
                DatabaseName=self._catalog.database, Name=self._catalog.table
            )
        except self._glue.exceptions.EntityNotFoundException:
            return TableSchema(), None
        if self._only_at_location:
            self._check_location(response["Table"])
        columns = response["Table"]["StorageDescriptor"]["Columns"]
        schema = {c["Name"]: c["Type"] for c in columns if c["Name"] not in _METADATA_TYPES}
        return TableSchema(schema), response["Table"].get("VersionId")

    def _check_location(self, table: Mapping[str, Any]) -> None:
        found = str(table.get("StorageDescriptor", {}).get("Location") or "")
        if found.rstrip("/") == self._location.rstrip("/"):
            return
        name = f"{self._catalog.database}.{self._catalog.table}"
        raise JobInputError(
            f"the catalog table {name} already exists at {found or 'no location'!r}, not at "
            f"this table's location {self._location!r}: it is another table (another "
            "pipeline's, a crawler's), left as it is; rename the folder or route it to "
            "another table name"
        )

    def commit(self, schema: TableSchema, version: Any) -> None:
        wanted = table_input(self._catalog.table, self._location, schema)
        errors = self._glue.exceptions
        try:
            if version is None:
                self._glue.create_table(DatabaseName=self._catalog.database, TableInput=wanted)
            else:
                self._glue.update_table(
                    DatabaseName=self._catalog.database, TableInput=wanted, VersionId=version
                )
        except (errors.AlreadyExistsException, errors.ConcurrentModificationException) as error:
            raise SchemaConflictError(str(error)) from error

    def register_partition(self, ingestion_date: str) -> None:
        """Spark, Hive and Trino read registered partitions (Athena projects them)."""
        storage = table_input(self._catalog.table, self._location, TableSchema())
        partition = {
            "Values": [ingestion_date],
            "StorageDescriptor": {
                **storage["StorageDescriptor"],
                "Location": f"{self._location}ingestion_date={ingestion_date}/",
            },
        }
        response = self._glue.batch_create_partition(
            DatabaseName=self._catalog.database,
            TableName=self._catalog.table,
            PartitionInputList=[partition],
        )
        for error in response.get("Errors", []):
            if error["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException":
                raise RuntimeError(
                    f"registering partition {ingestion_date}: {error['ErrorDetail']}"
                )


Stage = Callable[[TableSchema, Mapping[str, str]], dict[str, str]]
"""Writes the landing objects' rows in the planned table, off to the side (given the objects
refused so far); returns the objects whose rows could not be written, with why."""


class SchemaStore(Protocol):
    """Where the table's schema is kept (the file, the catalog table, or the Iceberg table of
    ``iceberg.IcebergSchemaStore``): ``load`` returns it with a version, ``commit`` raises
    :class:`SchemaConflictError` when another run changed it since that version."""

    def load(self) -> tuple[TableSchema, Any]: ...

    def commit(self, schema: TableSchema, version: Any) -> None: ...


class Settled(NamedTuple):
    """The table after this run, and every object refused (before and while settling)."""

    table: TableSchema
    refused: dict[str, str]


def settle_schema(
    store: SchemaStore,
    groups: Sequence[Group],
    bad: Mapping[str, str],
    stage: Optional[Stage] = None,
) -> Settled:
    """Plan the table's columns against its current schema, write the rows (``stage``), then
    commit the columns of what was written; if another run committed first, plan and write
    again against what it committed. So the table changes only for data that lands."""
    for _attempt in range(SCHEMA_ATTEMPTS):
        current, version = store.load()
        planned, planned_bad = plan_columns(groups, current, dict(bad))
        # Each round refuses at least one more object: the loop ends.
        while stage is not None:
            failed = stage(planned, planned_bad)
            if not failed:
                break
            planned_bad.update(failed)
            replanned, planned_bad = plan_columns(groups, current, planned_bad)
            if replanned == planned:
                break  # the others' staged files hold exactly the planned columns
            planned = replanned
        if planned == current:
            return Settled(planned, planned_bad)
        try:
            store.commit(planned, version)
        except SchemaConflictError:
            continue
        return Settled(planned, planned_bad)
    raise RuntimeError(
        f"the table's schema changed under this run {SCHEMA_ATTEMPTS} times: try again"
    )
