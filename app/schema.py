"""Print the trace's JSON Schema (published as docs/trace.schema.json)."""

import json

from .models import Trace


def schema_text() -> str:
    return json.dumps(Trace.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
