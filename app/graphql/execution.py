"""GraphQL execution without per-field machinery for plain attributes.

graphql-core resolves every field the same way: a `GraphQLResolveInfo` built, arguments coerced, the result
tested for awaitability twice and dispatched through `complete_value`. A 50-record page has ~1,500 such
fields, almost all plain attributes of a dict (Strawberry's "basic fields", resolved by `resolve_attr`) whose
values are scalars, enums or lists of them. For those fields this context reads the attribute and coerces the
leaf directly — for a dict object in one pass over its selection (`execute_fields`, a plan per selection set),
for other objects field by field (`execute_field`); everything else (resolvers, arguments, objects, nulls in
non-null fields, errors) takes graphql-core's own path, so results and errors are the same.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLList, GraphQLNonNull, Undefined, is_leaf_type
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.graphql.types.common import resolve_attr

_SLOW: tuple[Any, Any, bool] = (None, None, False)


def _plain(field_def: Any) -> tuple[Any, Any, bool]:
    """(resolver, leaf type, is a list) for a basic field returning a leaf or a list of leaves, else _SLOW."""
    resolve = field_def.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field_def.args:
        return _SLOW
    kind = field_def.type
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    listed = isinstance(kind, GraphQLList)
    if listed:
        kind = kind.of_type
        if isinstance(kind, GraphQLNonNull):
            kind = kind.of_type
    if not is_leaf_type(kind):
        return _SLOW
    return resolve, kind, listed


_MISS = object()  # a leaf the direct path does not answer: graphql-core's path does (its errors, its nulls)


def _coerced(value: Any, coerce: Any, listed: bool) -> Any:
    """A non-null leaf value (or list of them) coerced for output, or _MISS."""
    try:
        if not listed:
            out = coerce(value)
            return out if out is not None and out is not Undefined else _MISS
        if isinstance(value, list | tuple):
            items = [coerce(v) for v in value if v is not None]
            if len(items) == len(value) and all(i is not None and i is not Undefined for i in items):
                return items
    except Exception:  # noqa: S110 - graphql-core's path reports it, located and shaped
        pass
    return _MISS


def _attribute(field_def: Any) -> str | None:
    """The Python attribute a basic Strawberry field reads with our default resolver, else None."""
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if definition is None or definition.base_resolver or definition.extensions:
        return None
    if getattr(definition, "default_resolver", None) is not resolve_attr:
        return None
    return str(definition.python_name)


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with a direct path for plain leaf attributes (see the module doc)."""

    _plain_fields: dict[tuple[int, str, str], tuple[Any, Any, bool]] = {}
    _leaves: dict[tuple[int, str, str], tuple[str | None, Any, bool, bool]] = {}

    def _leaf(self, parent_type: Any, name: str) -> tuple[str | None, Any, bool, bool]:
        """(attribute, leaf coercion, is a list, is nullable) of a plain leaf field; attribute None otherwise."""
        key = (id(self.schema), parent_type.name, name)
        leaf = self._leaves.get(key)
        if leaf is None:
            field_def = self.schema.get_field(parent_type, name)
            resolve, kind, listed = _plain(field_def) if field_def is not None else _SLOW
            attribute = _attribute(field_def) if resolve is not None else None
            if attribute is None or field_def is None:
                leaf = (None, None, False, False)
            else:
                leaf = (attribute, kind.coerce_output_value, listed, not isinstance(field_def.type, GraphQLNonNull))
            self._leaves[key] = leaf
        return leaf

    def _object_plan(self, parent_type: Any, grouped_field_set: Any) -> list[tuple[Any, ...]]:
        """Per selected field: (response name, field details, attribute, leaf coercion, is a list, is nullable);
        the attribute is None for a field that takes graphql-core's path (a resolver, arguments, an object)."""
        plan = []
        for response_name, details in grouped_field_set.items():
            node = details[0].node
            attribute, coerce, listed, nullable = self._leaf(parent_type, node.name.value)
            if node.arguments:
                attribute = None
            plan.append((response_name, details, attribute, coerce, listed, nullable))
        return plan

    def execute_fields(self, parent_type: Any, source_value: Any, path: Any, grouped_field_set: Any,
                       position_context: Any) -> Any:  # fmt: skip
        """graphql-core's `execute_fields` with the plain leaves of a dict source read and coerced in place (null
        where the field is nullable); a null for a non-null field, or a value that does not coerce, takes
        graphql-core's path (its errors, its null propagation)."""
        middleware = self.middleware_manager
        if type(source_value) is not dict or (middleware is not None and middleware.middlewares):
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        plans = self.__dict__.setdefault("_object_plans", {})
        cached = plans.get(id(grouped_field_set))
        if cached is None or cached[0] is not grouped_field_set:
            cached = plans[id(grouped_field_set)] = (
                grouped_field_set,
                self._object_plan(parent_type, grouped_field_set),
            )
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for response_name, details, attribute, coerce, listed, nullable in cached[1]:
                if attribute is not None:
                    value = source_value.get(attribute)
                    if value is None:
                        if nullable:
                            results[response_name] = None
                            continue
                    elif (out := _coerced(value, coerce, listed)) is not _MISS:
                        results[response_name] = out
                        continue
                result = self.execute_field(parent_type, source_value, details,
                                            Path(path, response_name, parent_type.name), position_context)  # fmt: skip
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any, path: Any,
                      position_context: Any) -> Any:  # fmt: skip
        node = field_details_list[0].node
        name = node.name.value
        key = (id(self.schema), parent_type.name, name)
        plan = self._plain_fields.get(key)
        if plan is None:
            field_def = self.schema.get_field(parent_type, name)
            plan = _plain(field_def) if field_def is not None else _SLOW
            self._plain_fields[key] = plan
        resolve, leaf, listed = plan
        middleware = self.middleware_manager
        if resolve is not None and not node.arguments and (middleware is None or not middleware.middlewares):
            try:
                value = resolve(source, None)
            except Exception:  # graphql-core's path below resolves it again and reports it
                value = None
            if value is not None and (out := _coerced(value, leaf.coerce_output_value, listed)) is not _MISS:
                return out
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
