from pathlib import Path

from app.schema import schema_text

DOC = Path(__file__).resolve().parent.parent / "docs" / "trace.schema.json"


def test_published_schema_is_current() -> None:
    assert DOC.read_text() == schema_text(), "run `make schema` to republish docs/trace.schema.json"
