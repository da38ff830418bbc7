"""Hypothesis strategies for our tools' arguments, from the published input schemas, and their runner.

Valid arguments: each property's values come from hypothesis-jsonschema on that property's own
schema, and objects are assembled here (hypothesis-jsonschema re-merges an object schema on every
draw, which is 10-100x slower than `fixed_dictionaries`). The cross-field rules (the tool's rules
file, schemas/tools/rules/, published apart from its input schema), `allOf` entries of if/then/else
on the values of `action`, `decision` and `steer`, become one branch per combination of those
values. Some values are slots (`@idle`, `@request`, `@workspace`, ...) that the runner replaces with a live
session, its pending request, or an existing directory, image or profile, so that valid calls reach
more than SESSION_NOT_FOUND. Waits are capped at MAX_WAIT_MS, since a wait is real time.

Invalid arguments: one mutation of a valid case, and the field it breaks: a value of a wrong type
(deeply nested ones included), a required field removed, a value outside its enum or pattern, an
unknown field, a string too long or empty, a config value or table over its bounds, an integer out
of bounds, overflowing or not integral, an array too long, too short or with duplicates.

Two classes of their own, each refused naming the field: aliases (a valid case plus the snake_case
or Python name of a field declared in the same object, at every depth: `session_id`,
`pollOptions.include_actions`; the schema declares only `sessionId`), and bad identifiers (a
`sessionId` or `requestId` that breaks the id pattern: path-like, empty, huge, unicode, control
characters, lone surrogates).

`World` runs cases against a server on the fake Codex (`tests/harness/fake_app_server.py`),
filling the slots first.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final, cast

import hypothesis_jsonschema
import jsonschema
import mcp_types as types
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from codex_mcp.wire.tools import tool_definition, tool_models, tool_rules

Json = Any
Schema = dict[str, Any]
Where = tuple[str | int, ...]

# Hypothesis examples per tool and per kind (valid, invalid). CI runs the default; set it 10x once
# locally after a change to the tools or their schemas.
FUZZ_EXAMPLES: Final = int(os.environ.get("CODEX_MCP_FUZZ_EXAMPLES", "500"))
FUZZ_SETTINGS: Final = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
MAX_WAIT_MS: Final = 20
SESSION_SLOTS: Final = ("@idle", "@running", "@approval", "@question", "@errored", "@cancelled")
REQUEST_SLOT: Final = "@request"
CWD_SLOT: Final = "@workspace"
IMAGE_SLOT: Final = "@image"
PROFILE_SLOT: Final = "@profile"
# Nesting: the SDK's client serializes at most about 250 levels, and over stdio the server's JSON
# parser takes fewer than 200 (a deeper request gets no answer at all: see test_fuzz_stdio).
DEEP_MAX: Final = 240
DEEP_MAX_ON_THE_WIRE: Final = 150
_WAITS: Final = frozenset({"waitMs", "waitForResult"})
# Prompts a client may well send, beyond what random text finds.
_EDGE_PROMPTS: Final = (
    "\x00",
    "🙂" * 50,
    "\u202eevil\u202c text",
    "line\r\nbreak\u2028\u2029",
    '{"id": 1, "method": "turn/start"}\n',
)
_SLOTS: Final[Mapping[str, tuple[str, ...]]] = {
    "sessionId": SESSION_SLOTS,
    "sessionIds[]": SESSION_SLOTS,
    "requestId": (REQUEST_SLOT,),
    "cwd": (CWD_SLOT,),
    "profile": (PROFILE_SLOT,),
    "images[]": (IMAGE_SLOT,),
}
_OVERFLOWING: Final = (2**31, 2**53 + 1, 2**63, 2**64 + 1, 10**30, -(2**63) - 1, -(10**30))
# What an id we hand out looks like (the schemas' pattern and length, read as ECMA-262 reads it:
# `$` ends the text, so a trailing newline is refused too).
ID_FORM: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ID_FIELDS: Final = ("sessionId", "requestId")
# Ids no client should get past us: a path, a traversal, a URL-encoded one, a drive, a home.
_PATH_LIKE_IDS: Final = (
    "../../etc",
    "..",
    ".",
    "/etc/passwd",
    "sess_1/../../x",
    "a/b",
    "a\\b",
    "%2e%2e%2f",
    "C:\\Windows",
    "~root",
    "sess_1\n",
    "\nsess_1",
    "sess 1",
    "sess_1\x00",
    "sess.1",
    "",
)
_UNICODE_IDS: Final = (
    "sess_é",
    "🙂",
    "\uff53\uff45\uff53\uff53_\uff11",  # full-width letters and digit
    "sess\u202e1",
    "\ufeffsess_1",
    "sess_\u0301",
)
# Lone surrogates: JSON can carry them as escapes (`"\\ud800"`), no UTF-8 encoder can write them.
_SURROGATE_IDS: Final = ("sess_\ud800", "\udfff", "a\udc00b")
_ABSENT: Final = object()
_ANY_VALUES: Final[list[Json]] = [1, "x", None, {"a": []}]


@dataclass(frozen=True)
class Case:
    """Arguments for one call; `field` is the argument an invalid case breaks, as the server names it."""

    arguments: dict[str, Any]
    kind: str
    field: str | None = None


def json_path(parts: Iterable[str | int]) -> str:
    """`advanced.images[0]`: how the server names a field."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def nested(depth: int, as_list: bool) -> Json:
    """`[[[...]]]` or `{"a": {"a": ...}}`, `depth` levels deep (built without recursion)."""
    value: Json = [] if as_list else {}
    for _ in range(depth - 1):
        value = [value] if as_list else {"a": value}
    return value


def _deep(as_list: bool, deepest: int) -> st.SearchStrategy[Json]:
    return st.builds(nested, st.integers(2, deepest), st.just(as_list))


def _set(arguments: dict[str, Any], where: Where, value: Json) -> dict[str, Any]:
    """A copy of `arguments` with the value at `where` replaced (`_ABSENT`: removed)."""
    root: dict[str, Any] = dict(arguments)
    container: Any = root
    for part in where[:-1]:
        child: Any = container[part]
        copy: Any = list(cast(list[Json], child)) if isinstance(child, list) else dict(child)
        container[part] = copy
        container = copy
    if value is _ABSENT:
        del container[where[-1]]
    else:
        container[where[-1]] = value
    return root


def _leaf(schema: Schema) -> st.SearchStrategy[Json]:
    strategy = hypothesis_jsonschema.from_schema(schema)  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    return cast(st.SearchStrategy[Json], strategy)


def _json_type(value: Json) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    for kind, name in ((str, "string"), (float, "number"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


_Rule = tuple[str, list[Json], tuple[set[str], set[str]] | None, tuple[set[str], set[str]] | None]


def _effect(schema: Schema | None) -> tuple[set[str], set[str]] | None:
    """(required, forbidden) of a `then`/`else`: `required: [...]`, `not: required` or `not: anyOf`."""
    if schema is None:
        return None
    if set(schema) == {"required"}:
        return set(schema["required"]), set()
    assert set(schema) == {"not"}, f"a rule of a form the fuzzer does not know: {schema}"
    negated: Schema = schema["not"]
    options: list[Schema] = negated.get("anyOf", [negated])
    return set(), {name for option in options for name in option["required"]}


def _rule(entry: Schema) -> _Rule:
    condition: Schema = entry["if"]
    ((name, test),) = condition["properties"].items()
    assert condition.get("required") == [name], f"a rule of a form the fuzzer does not know: {entry}"
    allowed: list[Json] = [test["const"]] if "const" in test else list(test["enum"])
    return name, allowed, _effect(entry.get("then")), _effect(entry.get("else"))


class ToolArguments:
    """The valid and invalid argument strategies of one tool.

    `wire_safe` leaves out what JSON cannot carry (NaN, infinities) or the server cannot parse
    (nesting past DEEP_MAX_ON_THE_WIRE), for calls over stdio.
    """

    def __init__(self, tool: str, *, wire_safe: bool = False) -> None:
        self.tool = tool
        self.schema: Schema = tool_definition(tool)["inputSchema"]
        self._defs: dict[str, Schema] = self.schema.get("$defs", {})
        self._wire_safe = wire_safe
        self._deepest = DEEP_MAX_ON_THE_WIRE if wire_safe else DEEP_MAX
        self._rules = [_rule(entry) for entry in (tool_rules(tool, "input") or {}).get("allOf", [])]
        self._cache: dict[tuple[str, str], st.SearchStrategy[Json] | None] = {}
        self._alias_names = _alias_names(tool)
        self._valid_arguments = st.one_of(
            [
                self._object(self.schema, fixed, required, forbidden)
                for fixed, required, forbidden in self._branches()
            ]
        )

    # --- valid ----------------------------------------------------------------------------------

    def valid(self) -> st.SearchStrategy[Case]:
        """Arguments the published schema accepts (once the runner has filled the slots)."""
        return self._valid_arguments.map(lambda arguments: Case(arguments, "valid"))

    def _resolve(self, schema: Schema) -> Schema:
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        return {**self._defs[ref.rsplit("/", 1)[1]], **{k: v for k, v in schema.items() if k != "$ref"}}

    def _branches(self) -> Iterator[tuple[dict[str, Json], set[str], set[str]]]:
        """(fixed values, extra required, forbidden) for each consistent combination of rule values."""
        properties: dict[str, Schema] = self.schema["properties"]
        required = set(self.schema.get("required", []))
        tested = list(dict.fromkeys(name for name, *_ in self._rules))
        choices = [
            [*([] if name in required else [_ABSENT]), *self._rule_values(properties[name])]
            for name in tested
        ]
        for combination in itertools.product(*choices):
            present = {
                name: value for name, value in zip(tested, combination, strict=True) if value is not _ABSENT
            }
            needed: set[str] = set()
            forbidden = {name for name in tested if name not in present}
            for name, allowed, then, otherwise in self._rules:
                effect = then if name in present and present[name] in allowed else otherwise
                if effect is not None:
                    needed |= effect[0]
                    forbidden |= effect[1]
            if not needed & forbidden and not set(present) & forbidden:
                yield present, needed, forbidden

    def _rule_values(self, schema: Schema) -> list[Json]:
        """Every value of a field a rule tests: its enum, or both booleans (`steer`)."""
        resolved = self._resolve(schema)
        if resolved.get("type") == "boolean":
            return [True, False]
        return list(resolved["enum"])

    def _object(
        self, schema: Schema, fixed: dict[str, Json], required: set[str], forbidden: set[str]
    ) -> st.SearchStrategy[dict[str, Any]]:
        properties: dict[str, Schema] = schema.get("properties", {})
        needed = set(schema.get("required", [])) | required | set(fixed)
        values = {
            name: st.just(fixed[name]) if name in fixed else self._value(name, sub)
            for name, sub in properties.items()
            if name not in forbidden
        }
        return st.fixed_dictionaries(
            {name: value for name, value in values.items() if name in needed},
            optional={name: value for name, value in values.items() if name not in needed},
        )

    def _value(self, name: str, schema: Schema) -> st.SearchStrategy[Json]:
        schema = self._resolve(schema)
        kind = schema.get("type")
        extra = schema.get("additionalProperties")
        if kind == "object" and "properties" in schema:
            return self._object(schema, {}, set(), set())
        if kind == "object" and isinstance(extra, dict):
            keys = _leaf({"type": "string", **schema.get("propertyNames", {}), "maxLength": 16})
            return st.dictionaries(keys, self._value(f"{name}{{}}", cast(Schema, extra)), max_size=3)
        if kind == "object":
            # Free-form (config, outputSchema): any object, and ones nested deeper than json can go.
            return st.one_of(_leaf(schema), _deep(as_list=False, deepest=self._deepest))
        if kind == "array":
            items = self._value(f"{name}[]", schema["items"])
            return st.lists(
                items,
                min_size=schema.get("minItems", 0),
                max_size=schema.get("maxItems", 5),
                unique_by=repr if schema.get("uniqueItems") else None,
            )
        if name in _WAITS:
            schema = {**schema, "maximum": MAX_WAIT_MS}
        leaf = _leaf(schema)
        if name == "prompt":
            # Built on draw: a strategy's repr shows its constants. Up to the limit itself.
            huge = st.integers(100_000, schema["maxLength"]).map(lambda size: "x" * size)
            return st.one_of(leaf, st.sampled_from(_EDGE_PROMPTS), huge)
        slots = _SLOTS.get(name)
        # Mostly slots: a random id only ever finds SESSION_NOT_FOUND.
        return leaf if slots is None else st.one_of(leaf, *(st.just(slot) for slot in slots * 2))

    # --- invalid --------------------------------------------------------------------------------

    def invalid(self) -> st.SearchStrategy[Case]:
        """One mutation of a valid case; the published schema refuses every one."""
        return self._valid_arguments.flatmap(self._mutations)

    def _mutations(self, arguments: dict[str, Any]) -> st.SearchStrategy[Case]:
        options: list[st.SearchStrategy[Case]] = []
        for where, schema, present in self._positions(arguments, self.schema, ()):
            field = json_path(where)
            wrong = self._cached("wrong_type", schema)
            if wrong is not None:  # None: the schema takes every type (a config value)
                options.append(self._replace(arguments, where, wrong, "wrong_type", field))
            bad = self._cached("bad_value", schema)
            if bad is not None:
                options.append(self._replace(arguments, where, bad, "bad_value", field))
            if present and where[-1] in self._required_at(arguments, where[:-1]):
                options.append(st.just(Case(_set(arguments, where, _ABSENT), "missing_required", field)))
        for where, schema in self._closed_objects(arguments, self.schema, ()):
            known = set(schema.get("properties", {}))
            keys = st.text(min_size=1, max_size=30).filter(lambda key, known=known: key not in known)
            options.append(
                st.tuples(keys, st.sampled_from(_ANY_VALUES)).map(
                    lambda pair, where=where: Case(
                        _set(arguments, (*where, pair[0]), pair[1]),
                        "unknown_field",
                        json_path((*where, pair[0])),
                    )
                )
            )
        return st.one_of(options)

    # --- aliases ----------------------------------------------------------------------------

    def aliases(self) -> st.SearchStrategy[Case]:
        """A valid case plus, in one of its objects (made when absent), the snake_case or Python name
        of a field that object declares. The schema declares no such name: refused naming it."""
        return self._valid_arguments.flatmap(self._alias_mutations)

    def _alias_mutations(self, arguments: dict[str, Any]) -> st.SearchStrategy[Case]:
        options: list[st.SearchStrategy[Case]] = []
        places = list(self._closed_objects(arguments, self.schema, ()))
        properties: dict[str, Schema] = self.schema["properties"]
        for name, sub in properties.items():
            nested = self._resolve(sub)
            if name not in arguments and "properties" in nested and not nested.get("required"):
                places.append(((name,), nested))
        for where, schema in places:
            known = set(schema.get("properties", {}))
            aliases = sorted({alias for name in known for alias in self._alias_names.get(name, ())} - known)
            if aliases:
                options.append(
                    st.tuples(st.sampled_from(aliases), st.sampled_from(_ANY_VALUES)).map(
                        lambda pair, where=where: Case(
                            _put(arguments, (*where, pair[0]), pair[1]),
                            f"alias@{json_path(where) or 'top'}",
                            json_path((*where, pair[0])),
                        )
                    )
                )
        assert options, f"{self.tool}: a valid case with no object to put an alias in"
        return st.one_of(options)

    # --- bad identifiers --------------------------------------------------------------------

    def bad_identifiers(self) -> st.SearchStrategy[Case]:
        """A valid case whose `sessionId` or `requestId` (set where absent) is no id we hand out:
        refused naming the field, whatever the action."""
        ids = [name for name in _ID_FIELDS if name in self.schema["properties"]]
        values = bad_names(wire_safe=self._wire_safe).filter(lambda text: not ID_FORM.fullmatch(text))
        return st.tuples(self._valid_arguments, st.sampled_from(ids), values).map(
            lambda triple: Case(_put(triple[0], (triple[1],), triple[2]), "bad_identifier", triple[1])
        )

    @staticmethod
    def _replace(
        arguments: dict[str, Any], where: Where, values: st.SearchStrategy[Json], kind: str, field: str
    ) -> st.SearchStrategy[Case]:
        return values.map(lambda value: Case(_set(arguments, where, value), kind, field))

    def _positions(self, value: Json, schema: Schema, where: Where) -> Iterator[tuple[Where, Schema, bool]]:
        """(where, schema, present) of every property of every object in `value`, and of array items."""
        schema = self._resolve(schema)
        extra = schema.get("additionalProperties")
        if isinstance(value, dict) and "properties" in schema:
            for key, sub in cast(dict[str, Schema], schema["properties"]).items():
                present = key in value
                yield (*where, key), self._resolve(sub), present
                if present:
                    yield from self._positions(value[key], sub, (*where, key))
        elif isinstance(value, dict) and isinstance(extra, dict):
            for key in cast(dict[str, Json], value):
                yield (*where, key), self._resolve(cast(Schema, extra)), True
                yield from self._positions(value[key], cast(Schema, extra), (*where, key))
        elif isinstance(value, list) and "items" in schema:
            for index, item in enumerate(cast(list[Json], value)):
                yield (*where, index), self._resolve(schema["items"]), False
                yield from self._positions(item, schema["items"], (*where, index))

    def _closed_objects(self, value: Json, schema: Schema, where: Where) -> Iterator[tuple[Where, Schema]]:
        """(where, schema) of every object in `value` that allows no other properties."""
        schema = self._resolve(schema)
        if isinstance(value, list) and "items" in schema:
            for index, item in enumerate(cast(list[Json], value)):
                yield from self._closed_objects(item, schema["items"], (*where, index))
        if not isinstance(value, dict):
            return
        extra: object = schema.get("additionalProperties")
        if extra is False:
            yield where, schema
        properties: dict[str, Schema] = schema.get("properties", {})
        for key, item in cast(dict[str, Json], value).items():
            sub = properties.get(key, cast(Schema, extra) if isinstance(extra, dict) else None)
            if sub is not None:
                yield from self._closed_objects(item, sub, (*where, key))

    def _required_at(self, arguments: dict[str, Any], where: Where) -> set[str]:
        """The fields required in the object at `where`, the rules' included at the top."""
        if where:
            container = _get(arguments, where)
            schema = self._schema_at(where)
            return set(schema.get("required", [])) if isinstance(container, dict) else set()
        required = set(self.schema.get("required", []))
        for name, allowed, then, _ in self._rules:
            if then is not None and arguments.get(name, _ABSENT) in allowed:
                required |= then[0]
        return required

    def _schema_at(self, where: Where) -> Schema:
        schema = self.schema
        for part in where:
            schema = self._resolve(schema)
            properties: dict[str, Schema] = schema.get("properties", {})
            if isinstance(part, str) and part in properties:
                schema = properties[part]
            elif isinstance(part, int):
                schema = schema["items"]
            else:
                schema = schema["additionalProperties"]
        return self._resolve(schema)

    def _types(self, schema: Schema) -> set[str]:
        if "type" in schema:
            kind = schema["type"]
            return {kind} if isinstance(kind, str) else set(kind)
        if "anyOf" in schema:
            return {t for option in schema["anyOf"] for t in self._types(self._resolve(option))}
        if "enum" in schema:
            return {_json_type(value) for value in schema["enum"]}
        assert not {"const", "oneOf", "allOf", "not"} & set(schema), (
            f"a schema the fuzzer does not know: {schema}"
        )
        return set(_ALL_TYPES)  # no type: any JSON value

    def _cached(self, kind: str, schema: Schema) -> st.SearchStrategy[Json] | None:
        # Mutations are built per drawn case; building a strategy costs far more than drawing it.
        key = (kind, json.dumps(schema, sort_keys=True))
        if key not in self._cache:
            self._cache[key] = self._wrong_type(schema) if kind == "wrong_type" else self._bad_value(schema)
        return self._cache[key]

    def _wrong_type(self, schema: Schema) -> st.SearchStrategy[Json] | None:
        by_type: dict[str, st.SearchStrategy[Json]] = {
            "string": st.text(max_size=20),
            "integer": st.integers(),
            # Integral floats are integers to JSON Schema; only fractions and non-numbers are wrong.
            "number": st.floats(allow_nan=not self._wire_safe, allow_infinity=not self._wire_safe).filter(
                lambda number: not number.is_integer()
            ),
            "boolean": st.booleans(),
            "null": st.none(),
            "array": st.one_of(
                st.lists(st.integers(), max_size=3), _deep(as_list=True, deepest=self._deepest)
            ),
            "object": st.one_of(
                st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                _deep(as_list=False, deepest=self._deepest),
            ),
        }
        wrong = sorted(set(by_type) - self._types(schema))
        return st.sampled_from(wrong).flatmap(lambda kind: by_type[kind]) if wrong else None

    def _bad_value(self, schema: Schema) -> st.SearchStrategy[Json] | None:
        kind = self._types(schema)
        options: list[st.SearchStrategy[Json]] = []
        if kind == set(_ALL_TYPES) or kind == {"object"}:
            options.extend(_oversized(schema))
        if kind == {"string"}:
            allowed = {
                value for option in [schema, *schema.get("anyOf", [])] for value in option.get("enum", [])
            }
            patterns = [
                option["pattern"] for option in [schema, *schema.get("anyOf", [])] if "pattern" in option
            ]
            limit = schema.get("maxLength") or (65 if patterns else None)

            def refused(text: str) -> bool:
                return text not in allowed and not any(re.search(p, text) for p in patterns)

            if allowed or patterns:
                junk = st.one_of(
                    st.text(max_size=30), st.sampled_from(["", " ", "ACCEPT", "\x00", "🙂", "é"])
                )
                options.append(junk.filter(refused))
            if limit is not None:
                options.append(_too_long(limit))
            if schema.get("minLength", 0) >= 1:
                options.append(st.just(""))
        elif kind == {"integer"}:
            low, high = schema.get("minimum"), schema.get("maximum")
            if low is not None:
                options.append(st.integers(max_value=low - 1))
            if high is not None:
                options.append(st.integers(min_value=high + 1))
            outside = [
                n for n in _OVERFLOWING if (low is not None and n < low) or (high is not None and n > high)
            ]
            if outside:
                options.append(st.sampled_from(outside))
        elif kind == {"array"}:
            items = self._value("", schema["items"])
            if "maxItems" in schema:
                options.append(
                    st.lists(items, min_size=schema["maxItems"] + 1, max_size=schema["maxItems"] + 3)
                )
            if schema.get("minItems", 0) >= 1:
                options.append(st.just([]))
            if schema.get("uniqueItems"):
                options.append(items.map(lambda item: [item, item]))
        return st.one_of(options) if options else None


def _repeat(pair: tuple[int, str]) -> str:
    return pair[1] * pair[0]


_ALL_TYPES: Final = ("string", "integer", "number", "boolean", "null", "array", "object")


def _too_long(limit: int) -> st.SearchStrategy[str]:
    """A string over `limit` characters (by at most 100,000: a prompt's limit is a mebibyte)."""
    return st.tuples(st.integers(limit + 1, limit + min(limit, 100_000)), st.sampled_from("a_é🙂")).map(
        _repeat
    )


def _oversized(schema: Schema) -> Iterator[st.SearchStrategy[Json]]:
    """Values over the size bounds of a schema that takes them (an untyped config value, a table)."""
    if "maxLength" in schema:
        yield _too_long(schema["maxLength"])
    if "maxItems" in schema:
        yield st.integers(schema["maxItems"] + 1, schema["maxItems"] + 10).map(lambda n: list(range(n)))
    if "maxProperties" in schema:
        yield st.integers(schema["maxProperties"] + 1, schema["maxProperties"] + 10).map(
            lambda n: {f"k{i}": i for i in range(n)}
        )
    longest = schema.get("propertyNames", {}).get("maxLength")
    if longest is not None:
        yield _too_long(longest).map(lambda key: {key: 1})


def _put(arguments: dict[str, Any], where: Where, value: Json) -> dict[str, Any]:
    """A copy of `arguments` with `value` at `where`, the objects on the way made when absent."""
    root: dict[str, Any] = dict(arguments)
    container: Any = root
    for part in where[:-1]:
        current: Any = container[part] if isinstance(part, int) else container.get(part, {})
        child: Any = list(cast(list[Json], current)) if isinstance(current, list) else dict(current)
        container[part] = child
        container = child
    container[where[-1]] = value
    return root


def tools_with_aliases(tools: Iterable[str]) -> list[str]:
    """The tools whose input declares a field a client could send under another name."""
    return [tool for tool in tools if _alias_names(tool)]


def tools_with_identifiers(tools: Iterable[str]) -> list[str]:
    """The tools that take a session or request id."""
    return [
        tool for tool in tools if set(_ID_FIELDS) & set(tool_definition(tool)["inputSchema"]["properties"])
    ]


def bad_names(*, wire_safe: bool) -> st.SearchStrategy[str]:
    """Strings no id and no tool name looks like: path-like, empty, huge, unicode (lone surrogates
    unless `wire_safe`), and random text."""
    options: list[st.SearchStrategy[str]] = [
        st.sampled_from(_PATH_LIKE_IDS),
        st.sampled_from(_UNICODE_IDS),
        st.tuples(st.integers(65, 1_000_000), st.sampled_from("a_é🙂")).map(_repeat),
        st.text(max_size=40),
    ]
    if not wire_safe:
        options.append(st.sampled_from(_SURROGATE_IDS))
    return st.one_of(options)


def snake_case(name: str) -> str:
    """`sessionId` -> `session_id`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


@cache
def _alias_names(tool: str) -> dict[str, frozenset[str]]:
    """Published field name -> the names a client could send instead (its snake_case form, the
    generated model's Python name), for every field of the tool's input at every depth."""
    names: dict[str, set[str]] = {}
    stack: list[type[BaseModel]] = [tool_models(tool)[0]]
    seen: set[type[BaseModel]] = set()
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for python_name, info in model.model_fields.items():
            published = info.alias or python_name
            names.setdefault(published, set()).update({python_name, snake_case(published)} - {published})
            stack.extend(_models_in(info.annotation))
    return {name: frozenset(others) for name, others in names.items() if others}


def _get(value: Json, where: Where) -> Json:
    for part in where:
        value = value[part]
    return value


# --- running cases --------------------------------------------------------------------------

PROFILE: Final = "fuzz"
# The status each session slot stands for.
_SLOT_STATUS: Final = {
    "@idle": "idle",
    "@running": "running",
    "@approval": "waiting_approval",
    "@question": "waiting_approval",
    "@errored": "error",
    "@cancelled": "cancelled",
}
_SLOT_PROMPT: Final = {
    "@idle": "hello",
    "@running": "fake:hang",
    "@approval": "fake:approve",
    "@question": "fake:ask",
    "@errored": "fake:fail",
    "@cancelled": "hello",
}
# A few hundred fuzzed `codex` calls start as many sessions; clean them now and then so that
# `list` stays small.
_CLEAN_AFTER_SESSIONS: Final = 200


@dataclass
class Outcome:
    """What a call ended as: `ok`, or an error code and the field it names."""

    code: str
    field: str | None = None
    message: str = ""


def outcome_of(result: types.CallToolResult) -> Outcome:
    """The outcome of a tools/call result."""
    structured = cast(dict[str, Any], result.structured_content)
    assert isinstance(structured, dict), result
    if not result.is_error:
        return Outcome("ok")
    error = cast(dict[str, Any], structured["error"])
    return Outcome(str(error["code"]), error.get("field"), str(error["message"]))


@dataclass
class World:
    """A server on the fake Codex (`call` is one bounded tools/call), and the sessions of the slots.

    The slots' sessions are started through the server itself, with the fake's prompt markers.
    """

    tools_call: Callable[[str, dict[str, Any]], types.CallToolResult]
    workspace: Path
    image: Path
    # A 2026-07-28 retry: tools/call with `requestState` and `inputResponses`.
    retry_call: Callable[[str, dict[str, Any], str, dict[str, Any]], types.CallToolResult] | None = None
    slots: dict[str, tuple[str, str | None]] = field(default_factory=lambda: {})
    started: int = 0

    def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """One tools/call."""
        result = self.tools_call(tool, arguments)
        if tool in ("codex", "codex_session") and not result.is_error:
            self.started += 1
        return result

    def ok(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A call that must succeed: its structured content."""
        result = self.call(tool, arguments)
        assert not result.is_error, (tool, arguments, result.content)
        return cast(dict[str, Any], result.structured_content)

    # --- slots ----------------------------------------------------------------------------------

    def fill(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """`arguments` with every slot replaced by what it stands for."""
        filled = dict(arguments)
        request: str | None = None
        slot = filled.get("sessionId")
        if isinstance(slot, str) and slot in SESSION_SLOTS and filled.get("requestId") == REQUEST_SLOT:
            # An answer needs a session that asks: the one whose request fits the action.
            slot = "@question" if filled.get("action") == "respond_user_input" else "@approval"
        if isinstance(slot, str) and slot in SESSION_SLOTS:
            filled["sessionId"], request = self.session(slot)
        if filled.get("requestId") == REQUEST_SLOT:
            filled["requestId"] = request or "req_none"
        ids = filled.get("sessionIds")
        if isinstance(ids, list):
            listed = cast(list[Any], ids)
            filled["sessionIds"] = [self.session(i)[0] if i in SESSION_SLOTS else i for i in listed]
        if filled.get("action") == "wait" and "waitMs" not in filled:
            # Its default is 25 s of real time; a fuzzed wait waits at most MAX_WAIT_MS.
            filled["waitMs"] = MAX_WAIT_MS
        if filled.get("cwd") == CWD_SLOT:
            filled["cwd"] = str(self.workspace)
        if filled.get("profile") == PROFILE_SLOT:
            filled["profile"] = PROFILE
        filled = self._fill_images(filled)
        advanced = filled.get("advanced")
        if isinstance(advanced, dict):
            filled["advanced"] = self._fill_images(cast(dict[str, Any], advanced))
        return filled

    def _fill_images(self, container: dict[str, Any]) -> dict[str, Any]:
        images = container.get("images")
        if not isinstance(images, list):
            return container
        paths = [str(self.image) if image == IMAGE_SLOT else image for image in cast(list[Any], images)]
        return {**container, "images": paths}

    def session(self, slot: str) -> tuple[str, str | None]:
        """(session id, pending request id) of a live session in the slot's state."""
        known = self.slots.get(slot)
        if known is not None:
            result = self.call("codex_session", {"action": "get", "sessionId": known[0]})
            if not result.is_error and _status(result) == _SLOT_STATUS[slot]:
                return known
        if self.started > _CLEAN_AFTER_SESSIONS:
            self.ok("codex_session", {"action": "clean", "statuses": ["idle", "error", "cancelled"]})
            self.slots.clear()
            self.started = 0
        made = self._start(slot)
        self.slots[slot] = made
        return made

    def _start(self, slot: str) -> tuple[str, str | None]:
        arguments: dict[str, Any] = {
            "prompt": _SLOT_PROMPT[slot],
            "approvalPolicy": "on-request",
            "sandbox": "read-only",
            "cwd": str(self.workspace),
            # Until the turn ends or asks; a hanging turn would take all of it.
            "advanced": {} if slot == "@running" else {"waitForResult": 5000},
        }
        if slot == "@question":
            arguments["advanced"]["collaborationMode"] = "plan"
        started = self.ok("codex", arguments)
        session_id = str(started["sessionId"])
        if slot == "@cancelled":
            self.ok("codex_session", {"action": "cancel", "sessionId": session_id})
        actions: list[dict[str, Any]] = started.get("actions", [])
        assert started["status"] == _SLOT_STATUS[slot] or slot == "@cancelled", started
        return session_id, str(actions[0]["requestId"]) if actions else None


def _status(result: types.CallToolResult) -> str:
    return str(cast(dict[str, Any], result.structured_content)["status"])


@cache
def _validators(tool: str) -> list[Any]:
    """The tool's published input schema and its published rules, each as a validator."""
    rules = tool_rules(tool, "input")
    schemas = [tool_definition(tool)["inputSchema"], *([rules] if rules is not None else [])]
    return [jsonschema.Draft202012Validator(schema) for schema in schemas]


def schema_errors(tool: str, arguments: dict[str, Any]) -> list[str]:
    """How `arguments` break the tool's published input schema or rules."""
    return [
        f"{list(error.path)}: {error.message[:200]}"
        for validator in _validators(tool)
        for error in validator.iter_errors(arguments)
    ]


def check_valid(world: World, tool: str, case: Case, outcomes: Counter[str]) -> None:
    """Call with a valid case: never INTERNAL, and an INVALID_ARGUMENT names its field."""
    arguments = world.fill(case.arguments)
    assert schema_errors(tool, arguments) == [], "the strategy made an invalid case"
    outcome = outcome_of(world.call(tool, arguments))
    assert outcome.code != "INTERNAL", outcome
    if outcome.code == "INVALID_ARGUMENT":
        assert outcome.field, outcome
    outcomes[outcome.code if outcome.field is None else f"{outcome.code}({outcome.field})"] += 1


def check_invalid(world: World, tool: str, case: Case, outcomes: Counter[str]) -> None:
    """Call with an invalid case: INVALID_ARGUMENT naming the field the case breaks."""
    arguments = world.fill(case.arguments)
    assert schema_errors(tool, arguments), "the strategy made a valid case"
    outcome = outcome_of(world.call(tool, arguments))
    assert (outcome.code, outcome.field) == ("INVALID_ARGUMENT", case.field), (case.kind, outcome)
    outcomes[case.kind] += 1


def check_refused(world: World, tool: str, case: Case, outcomes: Counter[str]) -> None:
    """Call with a case whose id breaks the id form: INVALID_ARGUMENT naming that field, never
    accepted, never INTERNAL (whatever session or request the slots would have found)."""
    arguments = world.fill(case.arguments)
    value = arguments[str(case.field)]
    assert isinstance(value, str), case
    assert not ID_FORM.fullmatch(value), "the strategy made a valid id"
    outcome = outcome_of(world.call(tool, arguments))
    assert (outcome.code, outcome.field) == ("INVALID_ARGUMENT", case.field), (case.kind, value[:80], outcome)
    outcomes[f"{outcome.code}({outcome.field})"] += 1


def summary(tool: str, kind: str, outcomes: Counter[str]) -> str:
    """One line: how many cases a run tried, and how they ended."""
    tried = sum(outcomes.values())
    return f"fuzz {tool} {kind}: {tried} cases: " + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
