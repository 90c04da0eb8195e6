"""Opens ingot's catalog (SQL, REST or Glue) from PyIceberg, the way every interop script needs it.

ingot's catalog URIs are sqlx-style; SQLAlchemy wants `sqlite:///<abs path>` (four slashes)
and a driver in Postgres URIs. A warehouse is a directory or an `s3://` URI; an S3 warehouse
is reached with the usual AWS environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …), which the
tests set for the script. A Glue API is named `glue+<endpoint>` by the tests.
"""
import os

from pyiceberg.catalog.sql import SqlCatalog


def s3_properties() -> dict:
    """PyIceberg's S3 settings from the AWS environment (empty when it is not set)."""
    if "AWS_ENDPOINT_URL" not in os.environ:
        return {}
    return {
        "s3.endpoint": os.environ["AWS_ENDPOINT_URL"],
        "s3.access-key-id": os.environ["AWS_ACCESS_KEY_ID"],
        "s3.secret-access-key": os.environ["AWS_SECRET_ACCESS_KEY"],
        "s3.region": os.environ.get("AWS_REGION", "us-east-1"),
        "s3.force-virtual-addressing": "false",
    }


def open_catalog(uri: str, warehouse: str):
    if "://" not in warehouse:
        warehouse = f"file://{warehouse}"
    if uri.startswith("glue+"):
        from pyiceberg.catalog.glue import GlueCatalog
        return GlueCatalog(
            "ingot",
            warehouse=warehouse,
            **{
                "glue.endpoint": uri[len("glue+"):],
                "glue.region": "us-east-1",
                # The test Glue accepts any identity; an S3 warehouse's is in the environment.
                "glue.access-key-id": os.environ.get("AWS_ACCESS_KEY_ID", "ingot-reader"),
                "glue.secret-access-key": os.environ.get("AWS_SECRET_ACCESS_KEY", "ingot-reader"),
            },
            **s3_properties(),
        )
    if uri.startswith("http://") or uri.startswith("https://"):
        from pyiceberg.catalog.rest import RestCatalog
        return RestCatalog("ingot", uri=uri, warehouse=warehouse, **s3_properties())
    if uri.startswith("sqlite://"):
        uri = "sqlite:///" + uri[len("sqlite://"):]
    elif uri.startswith("postgres://"):
        uri = "postgresql+psycopg2://" + uri[len("postgres://"):]
    return SqlCatalog("ingot", uri=uri, warehouse=warehouse, **s3_properties())
