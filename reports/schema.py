"""summary.json's schema for ``answer``, ``trials`` and ``expected_best``, generated from the types that hold them
(reports/analysis.py), so the documented keys are the code's keys: ``python -m reports.schema`` writes them into
docs/summary.schema.json, and the suite checks the file against this."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

from reports.analysis import AcrossSubsets, ExpectedBest, NextStep, StudyAnalysis, SubsetAnswer, TrialRow
from reports.summary import SCHEMA_VERSION

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "summary.schema.json"
PRIMITIVES = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}


def of_type(hint) -> dict:
    """The JSON schema of one type hint: primitives, optionals, tuples and lists (arrays), dicts with text keys
    (objects), dataclasses (objects with every field required)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return of_dataclass(hint)
    if hint in PRIMITIVES:
        return {"type": PRIMITIVES[hint]}
    if hint is list:
        return {"type": "array"}
    if origin in (typing.Union, types.UnionType):
        if all(a in PRIMITIVES or a is list for a in args):
            return {"type": [PRIMITIVES.get(a, "array") for a in args]}
        return {"anyOf": [of_type(a) for a in args]}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": of_type(args[0])}
        return {"type": "array", "prefixItems": [of_type(a) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    if origin is list:
        return {"type": "array", "items": of_type(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": of_type(args[1])}
    raise TypeError(f"no JSON schema for {hint!r}")


def of_dataclass(cls) -> dict:
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    return {"type": "object", "required": fields, "additionalProperties": False,
            "properties": {name: of_type(hints[name]) for name in fields}}


def generated() -> dict:
    """The properties ``answer`` and ``trials`` of summary.json, as StudyAnalysis.to_json writes them."""
    answer = {"type": "object", "required": ["subsets", "across", "next_step"], "additionalProperties": False,
              "description": "the verdicts as data (reports/analysis.py); the page, the Summary sheet and the console "
                             "render them (reports/answer.py)",
              "properties": {"subsets": of_type(tuple[SubsetAnswer, ...]), "across": of_type(AcrossSubsets),
                             "next_step": of_type(NextStep)}}
    assert set(answer["properties"]) | {"trials", "expected_best"} == {f.name for f in dataclasses.fields(StudyAnalysis)}
    return {"answer": answer, "trials": of_type(tuple[TrialRow, ...]),
            "expected_best": of_type(tuple[ExpectedBest, ...])}


def document() -> dict:
    """docs/summary.schema.json with its generated parts and version brought up to date."""
    schema = json.loads(DOCUMENT.read_text())
    schema["properties"].update(generated())
    schema["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    schema["required"] = list(dict.fromkeys([*schema["required"], "answer", "trials", "expected_best"]))
    return schema


def main() -> int:
    DOCUMENT.write_text(json.dumps(document(), indent=2) + "\n")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
