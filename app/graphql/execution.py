"""GraphQL execution without per-field machinery for plain attributes.

graphql-core resolves every field the same way: a `GraphQLResolveInfo` built, arguments coerced, the result
tested for awaitability twice and dispatched through `complete_value`. A 50-record page has ~1,500 such
fields, almost all plain attributes of a dict (Strawberry's "basic fields", resolved by `resolve_attr`) whose
values are scalars, enums or lists of them. For those fields this context reads the attribute and coerces the
leaf directly; everything else (resolvers, arguments, objects, nulls, errors) takes graphql-core's own path,
so results and errors are the same.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLList, GraphQLNonNull, Undefined, is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

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


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with a direct path for plain leaf attributes (see the module doc)."""

    _plain_fields: dict[tuple[int, str, str], tuple[Any, Any, bool]] = {}

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
                if value is not None:
                    coerce = leaf.coerce_output_value
                    if not listed:
                        out = coerce(value)
                        if out is not None and out is not Undefined:
                            return out
                    elif isinstance(value, list | tuple):
                        items = [coerce(v) for v in value if v is not None]
                        if len(items) == len(value) and all(i is not None and i is not Undefined for i in items):
                            return items
            except Exception:  # noqa: S110 - graphql-core's path below reports it, located and shaped
                pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
