import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text

from common.errors import NotFoundError
from common.pagination import Page, PageDep
from common.session import ReadConnection, SessionDep, TransactionRoute, get_all
from sample_app.domains.widgets.models import Widget

router = APIRouter(prefix="/widgets", route_class=TransactionRoute)


class WidgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str


class WidgetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str


@router.post("", status_code=201)
async def create_widget(data: WidgetIn, session: SessionDep) -> WidgetOut:
    widget = Widget(code=data.code)
    session.add(widget)
    await session.flush()
    return WidgetOut.model_validate(widget)


@router.post("/twins", status_code=201)
async def create_twins(data: WidgetIn, session: SessionDep) -> list[WidgetOut]:
    """Two widgets with one code: the flush passes, the deferred constraint fails at COMMIT."""
    twins = [Widget(code=data.code), Widget(code=data.code)]
    session.add_all(twins)
    await session.flush()
    return [WidgetOut.model_validate(widget) for widget in twins]


@router.get("")
async def list_widgets(session: SessionDep, page: PageDep) -> Page[WidgetOut]:
    statement = select(Widget).order_by(Widget.code).limit(page.limit).offset(page.offset)
    widgets = await get_all(session, statement)
    return Page(
        items=[WidgetOut.model_validate(w) for w in widgets], limit=page.limit, offset=page.offset
    )


@router.get("/-/snapshots")
async def count_snapshots(connection: ReadConnection) -> dict[str, int]:
    """How many transactions two reads of one request ran in: `now()` is a transaction's start."""
    first = await connection.scalar(text("SELECT now()"))
    await connection.execute(text("SELECT pg_sleep(0.001)"))
    second = await connection.scalar(text("SELECT now()"))
    return {"transactions": 1 if first == second else 2}


@router.get("/-/crash")
async def crash() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@router.get("/{widget_id}")
async def get_widget(widget_id: uuid.UUID, session: SessionDep) -> WidgetOut:
    widget = await session.get(Widget, widget_id)
    if widget is None:
        raise NotFoundError("No widget with this id.")
    return WidgetOut.model_validate(widget)
