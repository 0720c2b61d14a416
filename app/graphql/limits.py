"""Query limits: depth, aliases, tokens, page size (`first`), query cost, text rules, introspection.

Query cost: every field selected costs 1 for each object it is selected on. A field with a page size
argument (`first`, `limit`) multiplies the objects below it by that size (its default when left out); any
other list of objects (a Party's nodes, a decision's paragraphs) counts as LIST_SIZE. A query estimated above
MAX_COST is refused before any resolver runs, with its cost in the error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from app.errors import field_error
from app.services import paging

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_FIRST = paging.MAX_LIMIT  # the REST `limit` cap: one page size limit through both doors
DEFAULT_FIRST = paging.DEFAULT_LIMIT
MAX_COST = 25_000
MAX_DOCUMENT_CHARS = 32_768
LIST_SIZE = 10
PAGE_ARGS = ("first", "limit")

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
    for arg in facts(document).first_arguments:
        if isinstance(arg.value, IntValueNode):
            yield int(arg.value.value), arg
        elif isinstance(arg.value, VariableNode):
            name = arg.value.name.value
            yield (variables or {}).get(name, defaults.get(name)), arg


class PageSizeLimit(SchemaExtension):
    """`first` is 1–MAX_FIRST (REST's `limit` range) everywhere; a larger page is refused before any resolver runs."""

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


def _nodes(node: Any) -> Iterator[Node]:
    """Every AST node below `node`."""
    for key in node.keys:
        value = getattr(node, key, None)
        if isinstance(value, Node):
            yield value
            yield from _nodes(value)
        elif isinstance(value, tuple | list):
            for item in value:
                if isinstance(item, Node):
                    yield item
                    yield from _nodes(item)


@dataclass
class DocumentFacts:
    """What the limits read from a parsed document, found once per document (the parser cache hands the same
    document object to every request with the same query text)."""

    first_arguments: list[ArgumentNode]
    nul_literal: StringValueNode | None
    costs: dict[tuple[Any, ...], int] = field(default_factory=dict)  # by operation and integer variables


_FACTS: dict[int, tuple[DocumentNode, DocumentFacts]] = {}
_FACTS_MAX = 512  # twice the parser cache: every cached document keeps its facts


def facts(document: DocumentNode) -> DocumentFacts:
    """The document's facts (kept with a reference to the document, so its id stays its own)."""
    hit = _FACTS.get(id(document))
    if hit is not None and hit[0] is document:
        return hit[1]
    if len(_FACTS) >= _FACTS_MAX:
        _FACTS.clear()
    nul = next((n for n in _nodes(document) if isinstance(n, StringValueNode) and "\x00" in n.value), None)
    found = DocumentFacts(list(_first_arguments(document)), nul)
    _FACTS[id(document)] = (document, found)
    return found


def _nul_in(value: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if (found := _nul_in(k, path)) or (found := _nul_in(v, (*path, k))):
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if found := _nul_in(v, (*path, i)):
                return found
    return None


def text_error(document: DocumentNode, variables: dict[str, Any] | None) -> GraphQLError | None:
    """A NUL byte in a string literal or a variable (PostgreSQL text cannot hold one), as an INVALID error.
    (Unpaired surrogates never get this far: the JSON decoder and the GraphQL lexer refuse them.)"""
    msg = "must not contain NUL bytes (\\u0000)"
    node = facts(document).nul_literal
    if node is not None:
        return GraphQLError(f"a string literal {msg}", nodes=[node], extensions={"code": "INVALID", "errors": [
            {"loc": ["query"], "msg": msg, "type": "value_error"}]})  # fmt: skip
    found = _nul_in(variables or {}, ("variables",))
    if found:
        return GraphQLError(f"{'.'.join(map(str, found))}: {msg}", extensions={"code": "INVALID", "errors": [
            {"loc": list(found), "msg": msg, "type": "value_error"}]})  # fmt: skip
    return None


class _Coster:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def _size(self, node: FieldNode, field: Any) -> int | None:
        """The page size a field asks for (argument, else its default), or None if it takes none."""
        for name in PAGE_ARGS:
            if name not in field.args:
                continue
            for arg in node.arguments or ():
                if arg.name.value == name:
                    if isinstance(arg.value, IntValueNode):
                        return max(int(arg.value.value), 1)
                    if isinstance(arg.value, VariableNode):
                        value = self.variables.get(arg.value.name.value)
                        if isinstance(value, int) and not isinstance(value, bool):
                            return max(value, 1)
            default = field.args[name].default_value
            return default if isinstance(default, int) and default > 0 else DEFAULT_FIRST
        return None

    def cost(self, selections: SelectionSetNode, parent: Any, objects: int, depth: int = 0) -> int:
        total = 0
        if depth > 64:  # fragments are acyclic after validation; this only bounds pathological nesting
            return total
        for sel in selections.selections:
            if isinstance(sel, FieldNode):
                total += objects
                if sel.selection_set is None or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
                    continue
                field = parent.fields.get(sel.name.value)
                if field is None:
                    continue
                size = self._size(sel, field)
                if size is None:
                    in_page = parent.name.endswith("Connection")  # its nodes/edges are the page already sized
                    size = LIST_SIZE if is_list_type(get_nullable_type(field.type)) and not in_page else 1
                total += self.cost(sel.selection_set, get_named_type(field.type), objects * size, depth + 1)
            elif isinstance(sel, InlineFragmentNode):
                cond = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                total += self.cost(sel.selection_set, cond, objects, depth + 1)
            elif isinstance(sel, FragmentSpreadNode) and (frag := self.fragments.get(sel.name.value)):
                cond = self.schema.get_type(frag.type_condition.name.value)
                total += self.cost(frag.selection_set, cond, objects, depth + 1)
        return total


def query_cost(
    schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None, operation: str | None
) -> int:
    """The estimated cost of the operation that will run (see the module docstring). Only integer variables
    (page sizes) change it, so it is computed once per document, operation and integer variables."""
    key = (operation, *sorted((k, v) for k, v in (variables or {}).items() if type(v) is int))
    costs = facts(document).costs
    if key not in costs:
        costs[key] = _query_cost(schema, document, variables, operation)
    return costs[key]


def _query_cost(
    schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None, operation: str | None
) -> int:
    coster = _Coster(schema, document, variables)
    total = 0
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode) or (operation and (op.name and op.name.value) != operation):
            continue
        root = schema.get_root_type(op.operation)
        total = max(total, coster.cost(op.selection_set, root, 1))
    return total


class QueryGuard(SchemaExtension):
    """Refuse, before any resolver runs, a query estimated above MAX_COST or carrying a NUL byte."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None and ctx.result is None:
            error = text_error(ctx.graphql_document, ctx.variables)
            if error is None:
                cost = query_cost(ctx.schema._schema, ctx.graphql_document, ctx.variables, ctx.operation_name)
                if cost > MAX_COST:
                    error = GraphQLError(
                        f"query cost {cost} exceeds the budget of {MAX_COST}: ask for smaller pages (`first`) or "
                        "less nesting, and page with `after`",
                        extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "budget": MAX_COST})  # fmt: skip
            if error is not None:
                ctx.result = ExecutionResult(data=None, errors=[error])
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
        QueryGuard,
    ]
