import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.errors import ConflictError, NotFoundError
from common.pagination import Page, PageDep
from common.session import (
    ReadConnection,
    SessionDep,
    TransactionRoute,
    WriteConnection,
    get_all,
)
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


@router.post("/-/core", status_code=201)
async def create_widget_core(data: WidgetIn, connection: WriteConnection) -> WidgetOut:
    """A Core INSERT on the request's write connection."""
    statement = insert(Widget).values(code=data.code).returning(Widget.id, Widget.code)
    row = (await connection.execute(statement)).one()
    return WidgetOut(id=row.id, code=row.code)


async def write_both_ways(
    data: WidgetIn, session: AsyncSession, connection: AsyncConnection, *, fail: bool
) -> dict[str, int]:
    """One widget through each handle; how many of them each handle sees."""
    mine = select(func.count()).select_from(Widget).where(Widget.code.startswith(data.code))
    session.add(Widget(code=f"{data.code}-orm"))
    await session.flush()
    seen_by_connection = await connection.scalar(mine)
    await connection.execute(insert(Widget).values(code=f"{data.code}-core"))
    seen_by_session = await session.scalar(mine)
    if fail:
        raise ConflictError("Both writes happened; the request fails after them.")
    return {"seen_by_connection": seen_by_connection or 0, "seen_by_session": seen_by_session or 0}


@router.post("/-/session-then-connection", status_code=201)
async def session_then_connection(
    data: WidgetIn, session: SessionDep, connection: WriteConnection, fail: bool = False
) -> dict[str, int]:
    return await write_both_ways(data, session, connection, fail=fail)


@router.post("/-/connection-then-session", status_code=201)
async def connection_then_session(
    data: WidgetIn, connection: WriteConnection, session: SessionDep, fail: bool = False
) -> dict[str, int]:
    return await write_both_ways(data, session, connection, fail=fail)


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
