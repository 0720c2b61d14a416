"""Shared GraphQL pieces: the Lang enum, lstring fields, Relay connections, small value types."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import strawberry

from app.models.common import pick_lang
from app.services import paging

if TYPE_CHECKING:
    from app.graphql.context import Info

Row = dict[str, Any]
T = TypeVar("T")


@strawberry.enum(description="A UN language; lstring fields fall back to English, then to any language")
class Lang(enum.Enum):
    AR = "ar"
    EN = "en"
    ES = "es"
    FR = "fr"
    RU = "ru"
    ZH = "zh"


def resolve_attr(source: Any, name: str) -> Any:
    """Default resolver: services return dicts, connections are objects."""
    return source.get(name) if type(source) is dict else getattr(source, name)


def lstring(key: str, *, required: bool = False, description: str | None = None) -> Any:
    """The GraphQL field `key(lang:)`: the text of lstring `key` in `lang` (fallback: English, then any language).

    Declare it on a Python attribute other than `key` (e.g. `title_text`); the attribute `key` itself is the raw
    object, exposed as `{key}I18n` by `i18n()` as a plain field (no resolver: the cheap path)."""

    def text(root: Row, lang: Lang | None = None) -> str:
        return pick_lang(root.get(key), lang.value if lang else None)  # type: ignore[return-value]

    def maybe_text(root: Row, lang: Lang | None = None) -> str | None:
        return pick_lang(root.get(key), lang.value if lang else None)

    return strawberry.field(resolver=text if required else maybe_text, name=key, description=description)


def i18n(key: str) -> Any:
    """The whole lstring object `key` (every language) as the GraphQL field `{key}I18n`."""
    return strawberry.field(name=f"{key}I18n", description=f"`{key}` in every language")


def as_date(value: Any) -> date | None:
    """Dates kept inside JSON columns come back as ISO strings."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def serialize_datetime(value: datetime) -> str:
    """The same text as the REST API (pydantic): UTC as `Z`."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


DateTimeScalar = strawberry.scalar(
    name="DateTime",
    description="ISO 8601 date-time (UTC as `Z`)",
    serialize=serialize_datetime,
    parse_value=lambda v: datetime.fromisoformat(str(v).replace("Z", "+00:00")),
)


@strawberry.type(description="Paging state of a connection")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(description="True when this page was asked for `after` a cursor")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item of this page")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page")


@strawberry.type(description="An item of a connection with its cursor")
class Edge(Generic[T]):
    node: T
    _key: strawberry.Private[paging.SortKey | None]

    @strawberry.field(description="Opaque keyset cursor of this item")
    def cursor(self) -> str:
        if self._key is None:
            return ""
        return paging.encode_cursor(self._key, tuple(self.node[c.name] for c in self._key.columns))  # type: ignore[index]


@strawberry.type(description="A keyset-paged list, in the same order as the REST list")
class Connection(Generic[T]):
    nodes: list[T] = strawberry.field(description="The items of this page (shortcut for edges.node)")
    _next: strawberry.Private[str | None]
    _key: strawberry.Private[paging.SortKey | None]
    _after: strawberry.Private[str | None] = None

    @strawberry.field
    def edges(self) -> list[Edge[T]]:
        return [Edge(node=n, _key=self._key) for n in self.nodes]

    @strawberry.field
    def page_info(self) -> PageInfo:
        start = Edge(node=self.nodes[0], _key=self._key).cursor() if self.nodes and self._key else None
        return PageInfo(
            has_next_page=self._next is not None,
            has_previous_page=self._after is not None,
            start_cursor=start,
            end_cursor=self._next,
        )


def connection(page: tuple[list[Row], str | None], key: paging.SortKey | None, after: str | None = None) -> Any:
    """A Connection over a service page `(items, next_cursor)`; `after` is the cursor the page was asked after."""
    items, next_cursor = page
    return Connection(nodes=items, _next=next_cursor, _key=key, _after=after)


async def list_connection(
    info: Info,
    list_page: Callable[..., Awaitable[paging.Page]],
    listing: paging.Listing[Any],
    *,
    filter: object | None,
    sort: enum.Enum | None,
    first: int,
    after: str | None,
) -> Any:
    """A top-level list: the REST list's service call (`list_page`, over `listing`'s filter and sorts) as a
    Connection in the same order."""
    order = sort.value if sort else None
    filters = listing.filter.parse(filter)
    async with info.context.read() as conn:
        page = await list_page(conn, info.context.principal, filters=filters, sort=order, cursor=after, limit=first)
    return connection(page, listing.sort_key(order), after=after)


@strawberry.type(description="A person or office to contact")
class Contact:
    name: str | None
    email: str | None
    organization: str | None
