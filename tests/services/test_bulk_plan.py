"""bulk_upsert's plan step on its own: decisions against given current rows, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace

from app.models.record import CONTENT_FIELDS
from app.services.record_writes import BulkItem, plan_bulk

AT = datetime(2026, 12, 1, tzinfo=UTC)


def _content(title: str) -> dict[str, object]:
    content: dict[str, object] = {k: [] for k in CONTENT_FIELDS}
    content.update(type="news", title={"en": title}, summary=None, body=None, publication_date=None)
    return content


class _Row(SimpleNamespace):
    """A head row as SQLAlchemy hands it over: attributes and `_mapping`."""

    @property
    def _mapping(self) -> dict[str, object]:
        return vars(self)


def _head(content: dict[str, object], *, revision: int, status: str) -> _Row:
    return _Row(id=uuid.uuid4(), party="BR", external_id="x", revision=revision, status=status, **content)


def test_new_item_is_created_with_one_head_row_and_one_event() -> None:
    plan = plan_bulk([BulkItem(0, "BR", "x", _content("A"))], {}, {}, at=AT, publish=False)
    (item,) = plan.items
    assert item.status == "created" and item.new_head is not None and item.new_head["external_id"] == "x"
    assert [e.action for e in item.events] == ["record.create"]
    assert plan.rows("new_head") == [item.new_head] and plan.rows("head_update") == [] and plan.rows("publish") == []


def test_same_content_is_unchanged_and_writes_nothing() -> None:
    head = _head(_content("A"), revision=0, status="draft")
    plan = plan_bulk([BulkItem(3, "BR", "x", _content("A"))], {("BR", "x"): head}, {}, at=AT, publish=False)
    (item,) = plan.items
    assert (item.index, item.record_id, item.status) == (3, head.id, "unchanged")
    assert not item.events and all(plan.rows(n) == [] for n in ("new_head", "head_update", "draft_upsert", "publish"))


def test_changed_draft_updates_the_head_but_a_published_record_gets_a_working_draft() -> None:
    draft_head = _head(_content("A"), revision=0, status="draft")
    published = _head(_content("A") | {"publication_date": date(2026, 1, 1)}, revision=2, status="published")
    published.external_id = "y"
    items = [BulkItem(0, "BR", "x", _content("B")), BulkItem(1, "BR", "y", _content("B"))]
    existing = {("BR", "x"): draft_head, ("BR", "y"): published}
    plan = plan_bulk(items, existing, {}, at=AT, publish=False)
    assert [i.status for i in plan.items] == ["updated", "updated"]
    assert plan.items[0].head_update is not None and plan.items[0].draft_upsert is None
    assert plan.items[1].draft_upsert is not None and plan.items[1].head_update is None


def test_publish_plans_a_publication_per_changed_item_only() -> None:
    same = _head(_content("A"), revision=1, status="published")
    items = [BulkItem(0, "BR", "x", _content("A")), BulkItem(1, "BR", "new", _content("N"))]
    plan = plan_bulk(items, {("BR", "x"): same}, {}, at=AT, publish=True)
    assert [i.status for i in plan.items] == ["unchanged", "created"]
    assert [p.record_id for p in plan.rows("publish")] == [plan.items[1].record_id]
