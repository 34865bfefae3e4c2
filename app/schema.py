"""The trace's JSON Schema, generated from app/models.py (the one definition) and published as
docs/trace.schema.json by `make schema`; tests/test_schema.py fails when the file is stale."""

import json

from .models import Trace


def schema_text() -> str:
    return json.dumps(Trace.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
