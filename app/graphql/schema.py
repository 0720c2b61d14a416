"""The GraphQL schema and the `/graphql` router (GraphiQL and introspection switched by settings)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext, ExecutionResult

from app.graphql import errors as graphql_errors
from app.graphql import limits
from app.graphql.context import get_context
from app.graphql.execution import FastExecutionContext
from app.graphql.resolvers import cooperation, decisions, nodes, opportunities, records, reference, search, webhooks
from app.graphql.types.common import DateTimeScalar, resolve_attr
from app.settings import Settings


@strawberry.type(description="Reads: the same data and rules as the REST API")
class Query:
    record = strawberry.field(resolver=records.record)
    record_draft = strawberry.field(resolver=records.record_draft)
    record_revisions = strawberry.field(resolver=records.record_revisions)
    records = strawberry.field(resolver=records.records)
    national_node = strawberry.field(resolver=nodes.national_node)
    national_nodes = strawberry.field(resolver=nodes.national_nodes)
    decision = strawberry.field(resolver=decisions.decision)
    decisions = strawberry.field(resolver=decisions.decisions)
    cooperation_request = strawberry.field(resolver=cooperation.cooperation_request)
    cooperation_requests = strawberry.field(resolver=cooperation.cooperation_requests)
    opportunity = strawberry.field(resolver=opportunities.opportunity)
    opportunities = strawberry.field(resolver=opportunities.opportunities)
    party = strawberry.field(resolver=reference.party)
    parties = strawberry.field(resolver=reference.parties)
    vocabulary = strawberry.field(resolver=reference.vocabulary)
    vocabularies = strawberry.field(resolver=reference.vocabularies)
    search = strawberry.field(resolver=search.search)
    webhook_subscription = strawberry.field(resolver=webhooks.webhook_subscription)
    webhook_subscriptions = strawberry.field(resolver=webhooks.webhook_subscriptions)
    webhook_deliveries = strawberry.field(resolver=webhooks.webhook_deliveries)


@strawberry.type(description="Writes: the same token, scopes and service checks as the REST API; one transaction each")
class Mutation:
    create_record = strawberry.mutation(resolver=records.create_record)
    update_record = strawberry.mutation(resolver=records.update_record)
    replace_record = strawberry.mutation(resolver=records.replace_record)
    submit_record = strawberry.mutation(resolver=records.submit_record)
    publish_record = strawberry.mutation(resolver=records.publish_record)
    withdraw_record = strawberry.mutation(resolver=records.withdraw_record)
    bulk_upsert_records = strawberry.mutation(resolver=records.bulk_upsert_records)
    create_node = strawberry.mutation(resolver=nodes.create_node)
    update_node = strawberry.mutation(resolver=nodes.update_node)
    replace_node = strawberry.mutation(resolver=nodes.replace_node)
    delete_node = strawberry.mutation(resolver=nodes.delete_node)
    create_decision = strawberry.mutation(resolver=decisions.create_decision)
    update_decision = strawberry.mutation(resolver=decisions.update_decision)
    replace_decision = strawberry.mutation(resolver=decisions.replace_decision)
    delete_decision = strawberry.mutation(resolver=decisions.delete_decision)
    create_cooperation_request = strawberry.mutation(resolver=cooperation.create_cooperation_request)
    update_cooperation_request = strawberry.mutation(resolver=cooperation.update_cooperation_request)
    replace_cooperation_request = strawberry.mutation(resolver=cooperation.replace_cooperation_request)
    delete_cooperation_request = strawberry.mutation(resolver=cooperation.delete_cooperation_request)
    create_offer = strawberry.mutation(resolver=cooperation.create_offer)
    update_offer = strawberry.mutation(resolver=cooperation.update_offer)
    withdraw_offer = strawberry.mutation(resolver=cooperation.withdraw_offer)
    decide_offer = strawberry.mutation(resolver=cooperation.decide_offer)
    create_opportunity = strawberry.mutation(resolver=opportunities.create_opportunity)
    update_opportunity = strawberry.mutation(resolver=opportunities.update_opportunity)
    replace_opportunity = strawberry.mutation(resolver=opportunities.replace_opportunity)
    delete_opportunity = strawberry.mutation(resolver=opportunities.delete_opportunity)
    create_webhook = strawberry.mutation(resolver=webhooks.create_webhook)
    update_webhook = strawberry.mutation(resolver=webhooks.update_webhook)
    delete_webhook = strawberry.mutation(resolver=webhooks.delete_webhook)
    ping_webhook = strawberry.mutation(resolver=webhooks.ping_webhook)
    redeliver_webhook = strawberry.mutation(resolver=webhooks.redeliver_webhook)
    rotate_webhook_secret = strawberry.mutation(resolver=webhooks.rotate_webhook_secret)


class Schema(strawberry.Schema):
    """Logs only what will be masked; domain and client errors are answers, not incidents."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        graphql_errors.log_unexpected(errors, execution_context)


@lru_cache(maxsize=2)
def build_schema(*, introspection: bool) -> Schema:
    """The schema; built once per introspection setting."""
    return Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(default_resolver=resolve_attr),
        scalar_overrides={datetime: DateTimeScalar},
        extensions=limits.extensions(introspection=introspection),
        execution_context_class=FastExecutionContext,
    )


class Router(GraphQLRouter[Any, None]):
    """orjson in and out; domain errors mapped and unexpected ones masked on every result."""

    suggestions = True

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        result.errors = graphql_errors.map_errors(result.errors, suggestions=self.suggestions)
        return await super().process_result(request, result)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        from app.routers.docs import graphql_ide_page

        return HTMLResponse(graphql_ide_page(self.graphql_ide_html, request))

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def parse_http_body(self, request: Any) -> Any:
        """The request, with the document size checked before it is parsed (variables may be large: bulk)."""
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            if item.query is not None and len(item.query) > limits.MAX_DOCUMENT_CHARS:
                raise HTTPException(413, f"the GraphQL document is {len(item.query)} characters; the limit is "
                                         f"{limits.MAX_DOCUMENT_CHARS} (send data in variables)")  # fmt: skip
        return data


def graphql_router(settings: Settings) -> GraphQLRouter[Any, None]:
    """The `/graphql` router; query batching stays off."""
    schema = build_schema(introspection=settings.introspection_enabled)
    router = Router(schema, path="/graphql", context_getter=get_context, include_in_schema=False,
                    graphql_ide="graphiql" if settings.ide_enabled else None)  # fmt: skip
    router.suggestions = settings.introspection_enabled
    return router
