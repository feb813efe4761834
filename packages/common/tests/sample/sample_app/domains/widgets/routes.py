import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import ConflictError, NotFoundError
from common.pagination import Page, PageDep
from common.session import ReadSessionDep, SessionDep
from sample_app.domains.widgets.models import Widget

router = APIRouter(prefix="/widgets")


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
async def list_widgets(session: ReadSessionDep, page: PageDep) -> Page[WidgetOut]:
    statement = select(Widget).order_by(Widget.code).limit(page.limit).offset(page.offset)
    widgets = (await session.scalars(statement)).all()
    return Page(
        items=[WidgetOut.model_validate(w) for w in widgets], limit=page.limit, offset=page.offset
    )


async def session_in_a_dependency(session: SessionDep) -> AsyncSession:
    return session


@router.post("/-/shared", status_code=201)
async def write_through_a_dependency_and_the_endpoint(
    data: WidgetIn,
    session: SessionDep,
    from_dependency: Annotated[AsyncSession, Depends(session_in_a_dependency)],
    fail: bool = False,
) -> dict[str, bool]:
    """One widget added through each of the request's two declarations of its session."""
    from_dependency.add(Widget(code=f"{data.code}-dependency"))
    session.add(Widget(code=f"{data.code}-endpoint"))
    await session.flush()
    if fail:
        raise ConflictError("Both writes happened; the request fails after them.")
    return {"same_session": session is from_dependency}


@router.get("/-/snapshots")
async def count_snapshots(session: ReadSessionDep) -> dict[str, int]:
    """How many transactions two reads of one request ran in: `now()` is a transaction's start."""
    first = await session.scalar(text("SELECT now()"))
    await session.execute(text("SELECT pg_sleep(0.001)"))
    second = await session.scalar(text("SELECT now()"))
    return {"transactions": 1 if first == second else 2}


@router.post("/-/read-only", status_code=201)
async def write_through_a_read_session(data: WidgetIn, session: ReadSessionDep) -> None:
    """A bug on purpose: a write through the read-only session."""
    session.add(Widget(code=data.code))
    await session.flush()


@router.post("/-/read-only-statement", status_code=201)
async def insert_through_a_read_session(data: WidgetIn, session: ReadSessionDep) -> None:
    """A bug on purpose: an INSERT statement through the read-only session."""
    await session.execute(insert(Widget).values(code=data.code))


@router.get("/-/crash")
async def crash() -> None:
    raise RuntimeError("secret internals: hunter2")


@router.get("/-/missing-file")
async def read_a_missing_file() -> None:
    """A bug on purpose that is no database's: an `OSError` of the file system."""
    with open("/nonexistent/widgets.json", encoding="utf-8"):
        pass


@router.get("/{widget_id}")
async def get_widget(widget_id: uuid.UUID, session: ReadSessionDep) -> WidgetOut:
    widget = await session.get(Widget, widget_id)
    if widget is None:
        raise NotFoundError("No widget with this id.")
    return WidgetOut.model_validate(widget)
