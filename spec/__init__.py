"""The API contract: the OpenAPI document, the error-code catalogue, and the code that reads them.

Everything that knows a limit of the API gets it from here: the mock validates requests with `Spec.validate`, the
client runs the same check before it spends money, and the contract tests generate cases from the same document.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .ssml import SsmlChecker
from .validation import RequestValidator, Violation, _inline, reference, resolve, shape_of

__all__ = ["SPEC_DIR", "ErrorCatalogue", "Operation", "Spec", "Violation", "load", "read_yaml"]

SPEC_DIR = Path(__file__).resolve().parent
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Operation:
    """One API operation, named by its operationId everywhere in the project."""

    operation_id: str
    method: str
    path: str
    request_schema: str  # JSON pointer into the document
    response_schema: str
    query_parameters: tuple[tuple[str, bool, str], ...]  # (name, required, pointer to its schema)

    def query_schema(self) -> dict[str, Any]:
        """Return one object schema for the operation's query parameters."""
        return {
            "type": "object",
            "required": [name for name, required, _ in self.query_parameters if required],
            "properties": {name: reference(pointer) for name, _, pointer in self.query_parameters},
        }


class ErrorCatalogue:
    """The documented Header.Code and FailCode values, and which JSON Schema keyword maps to which code."""

    def __init__(self, data: dict[str, Any]):
        self.header = {entry["code"]: entry for entry in data["header"]}
        self.fail = {entry["code"]: entry for entry in data["fail"]}
        self.by_keyword = {
            keyword: entry["code"] for entry in data["header"] for keyword in entry.get("keywords", ())
        }
        self.by_name = {entry["name"]: entry["code"] for entry in data["header"] if "name" in entry}

    def family(self, code: int) -> str | None:
        """Return the family of a Header.Code (authentication, parameter, quota, ...), or None if undocumented."""
        return self.header.get(code, {}).get("family")

    def code_for_keyword(self, keyword: str) -> int:
        """Return the Header.Code the API gives when a value breaks `keyword`."""
        return self.by_keyword.get(keyword, self.by_name["ParameterValueError"])


class Spec:
    """The loaded contract; build it with `load()` or `Spec.from_dir()`."""

    def __init__(self, document: dict[str, Any], catalogue: dict[str, Any], directory: Path | None = None):
        self.document = document
        self.directory = directory
        self.errors = ErrorCatalogue(catalogue)
        self.operations = dict(_operations(document))
        self.ssml_checker = SsmlChecker(document["x-ivh-ssml"])
        self._validators = {
            op.operation_id: RequestValidator(self, reference(op.request_schema)) for op in self.operations.values()
        }
        self._query_validators = {
            op.operation_id: RequestValidator(self, op.query_schema(), root="query")
            for op in self.operations.values()
        }
        self._schema_validators: dict[str, RequestValidator] = {}
        self._answer_validators: dict[str, RequestValidator] = {}
        self._response_validators: dict[tuple[str, bool], RequestValidator] = {}

    @classmethod
    def from_dir(cls, directory: str | Path) -> Spec:
        """Load `openapi.yaml` and `error-codes.yaml` from `directory`."""
        directory = Path(directory)
        document = read_yaml(directory / "openapi.yaml")
        catalogue = read_yaml(directory / "error-codes.yaml")
        return cls(document, catalogue, directory)

    # -- named parts of the document -------------------------------------------------------------------------
    @property
    def signature_rules(self) -> dict[str, Any]:
        return self.document["components"]["securitySchemes"]["signedQuery"]["x-ivh-signature"]

    @property
    def profile_names(self) -> list[str]:
        return [name for name in self.document["x-ivh-profiles"] if name not in ("default",)]

    @property
    def default_profile(self) -> str:
        return self.document["x-ivh-profiles"]["default"]

    def profile(self, name: str | None = None) -> dict[str, Any]:
        """Return the limits of profile `name` (the spec's default when None)."""
        name = name or self.default_profile
        if name not in self.profile_names:
            raise KeyError(f"unknown profile {name!r}; the spec defines {', '.join(self.profile_names)}")
        return self.document["x-ivh-profiles"][name]

    def server_url(self, profile: str | None = None) -> str:
        """Return the live API's base URL for a limit profile (the spec's default when None)."""
        name = profile or self.default_profile
        for server in self.document["servers"]:
            if server.get("x-ivh-profile") == name:
                return server["url"]
        raise KeyError(f"no server in the spec for profile {name!r}")

    @property
    def service(self) -> dict[str, Any]:
        return self.document["x-ivh-service"]

    @property
    def ssml_rules(self) -> dict[str, Any]:
        return self.document["x-ivh-ssml"]

    @property
    def builtin_timbres(self) -> list[dict[str, Any]]:
        return self.document["x-ivh-builtin-timbres"]["families"]

    def resolve(self, pointer: str) -> Any:
        """Return the node at a JSON pointer such as `#/components/schemas/TaskId`."""
        return resolve(self.document, pointer)

    # -- validation ------------------------------------------------------------------------------------------
    def validate(self, operation_id: str, body: Any) -> list[Violation]:
        """Return every rule of `operation_id`'s request that `body` breaks, most important first."""
        return self._validators[operation_id].violations(body)

    def surely_valid(self, operation_id: str, body: Any) -> bool:
        """Whether `operation_id`'s compiled validator accepts `body` (cheap: refusing costs no explanation); False
        means `validate` must say."""
        return self._validators[operation_id].surely_valid(body)

    def validate_query(self, operation_id: str, params: dict[str, str]) -> list[Violation]:
        """Return every rule of `operation_id`'s query parameters that `params` breaks."""
        return self._query_validators[operation_id].violations(params)

    def response_branch(self, operation_id: str, success: bool) -> dict[str, Any]:
        """The success branch, or the error branch (ErrorResponse), of `operation_id`'s response schema."""
        for option in self.resolve(self.operations[operation_id].response_schema)["oneOf"]:
            if option.get("$ref", "").endswith("/ErrorResponse") != success:
                return option
        raise ValueError(f"{operation_id}'s response has no {'success' if success else 'error'} branch")

    def check_response(self, operation_id: str, body: Any) -> list[Violation]:
        """Return the rules an answer of `operation_id` breaks, judged by the branch its Header.Code selects (0: the
        success branch; else the error envelope), so each names its field (`response.Payload.Total is required`):
        against the whole oneOf, an answer fits neither branch and nothing more is said."""
        header = body.get("Header") if isinstance(body, dict) else None
        success = isinstance(header, dict) and header.get("Code") == 0
        if (operation_id, success) not in self._response_validators:
            self._response_validators[operation_id, success] = RequestValidator(
                self, self.response_branch(operation_id, success), root="response")
        return self._response_validators[operation_id, success].violations(body)

    def check_answer(self, operation_id: str, answer: Any) -> list[Violation]:
        """Return the rules a successful answer of `operation_id` (the whole envelope, Header and Payload) breaks in
        its shape: a field of the spec's success response missing, or of another JSON type. The rules on values
        (enums, ranges) are left out, so an answer with a value the live API added later still reads."""
        if operation_id not in self._answer_validators:
            shape = shape_of(_inline(self.response_branch(operation_id, True), self.document))
            self._answer_validators[operation_id] = RequestValidator(self, shape)
        return self._answer_validators[operation_id].violations(answer)

    def check(self, pointer: str, instance: Any, root: str = "body") -> list[Violation]:
        """Validate any JSON value against the schema at `pointer` (responses, callback bodies)."""
        key = f"{pointer} {root}"
        if key not in self._schema_validators:
            self._schema_validators[key] = RequestValidator(self, reference(pointer), root=root)
        return self._schema_validators[key].violations(instance)


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            request = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            response = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            query = tuple(_query_parameter(document, parameter) for parameter in op.get("parameters", ()))
            yield op["operationId"], Operation(op["operationId"], method.upper(), path, request, response, query)


def _query_parameter(document: dict[str, Any], parameter: dict[str, Any]) -> tuple[str, bool, str]:
    pointer = parameter["$ref"]
    node = resolve(document, pointer)
    return node["name"], bool(node.get("required")), f"{pointer}/schema"


# libyaml's parser when PyYAML was built with it: the same documents, read five times faster (the spec alone took
# 0.3 s with the pure-Python one, paid by every process that starts a mock, the client or the contract suite).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (the last had won, silently), for the files a
    person writes (an accounts file, a pace file)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):  # a list or a mapping as a key: the schema refuses it
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Read one of the package's own YAML files (the spec, the scenario catalogue, the control API's schemas)."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


def yaml_problem(error: Exception) -> str:
    """A YAML (or decoding) error in one line: PyYAML's own quotes the source line with a caret under it, over four
    lines, where a refused start says why in one. The place it names stays: line and column."""
    if isinstance(error, yaml.MarkedYAMLError):
        where = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if where is not None:
            return f"{problem} (line {where.line + 1}, column {where.column + 1})"
        return problem or str(error).replace("\n", " ")
    return " ".join(str(error).split())


def load(directory: str | Path | None = None) -> Spec:
    """Return the contract shipped with this package, or the one in `directory`, loaded once per directory."""
    return _load(str(directory) if directory else None)  # load() and load(None) are one cache entry


@functools.lru_cache(maxsize=8)
def _load(directory: str | None) -> Spec:
    return Spec.from_dir(directory or SPEC_DIR)
