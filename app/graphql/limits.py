"""Query limits: depth, aliases, tokens, page size (`first`), introspection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    VariableNode,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from app.errors import field_error

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_FIRST = 100
DEFAULT_FIRST = 50

# Built once: the validation cache is keyed by the rule classes, so they must not change per request.
_RULES: list[type[ASTValidationRule]] = [depth_rule(MAX_DEPTH, None, None), alias_rule(MAX_ALIASES)]
_RULES_NO_INTROSPECTION: list[type[ASTValidationRule]] = [*_RULES, NoSchemaIntrospectionCustomRule]


def _first_arguments(node: Any) -> Iterator[ArgumentNode]:
    """Every `first:` argument anywhere in the document (operations and fragments)."""
    if isinstance(node, ArgumentNode):
        if node.name.value == "first":
            yield node
        return
    for key in node.keys:
        value = getattr(node, key, None)
        if isinstance(value, Node):
            yield from _first_arguments(value)
        elif isinstance(value, tuple | list):
            for item in value:
                if isinstance(item, Node):
                    yield from _first_arguments(item)


def _requested_sizes(document: DocumentNode, variables: dict[str, Any] | None) -> Iterator[Any]:
    defaults: dict[str, Any] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for var in definition.variable_definitions or ():
                if isinstance(var.default_value, IntValueNode):
                    defaults[var.variable.name.value] = int(var.default_value.value)
    for arg in _first_arguments(document):
        if isinstance(arg.value, IntValueNode):
            yield int(arg.value.value), arg
        elif isinstance(arg.value, VariableNode):
            name = arg.value.name.value
            yield (variables or {}).get(name, defaults.get(name)), arg


class PageSizeLimit(SchemaExtension):
    """`first` is 1–100 everywhere; a larger page is refused before any resolver runs."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None:
            for size, arg in _requested_sizes(ctx.graphql_document, ctx.variables):
                if isinstance(size, int) and not 1 <= size <= MAX_FIRST:
                    msg = f"first must be between 1 and {MAX_FIRST} (got {size}); page with `after`"
                    errors = [field_error(("args", "first"), f"must be between 1 and {MAX_FIRST}")]
                    error = GraphQLError(msg, nodes=[arg], extensions={"code": "INVALID", "errors": errors})
                    ctx.result = ExecutionResult(data=None, errors=[error])
                    break
        yield


def extensions(*, introspection: bool) -> list[Callable[[], SchemaExtension]]:
    """The limit and cache extensions, as per-request factories."""
    rules = _RULES if introspection else _RULES_NO_INTROSPECTION
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=256),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=256),
        PageSizeLimit,
    ]
