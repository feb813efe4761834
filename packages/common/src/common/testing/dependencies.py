"""Dependencies that FastAPI would run in its thread pool."""

import inspect

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts


def threaded_dependencies(app: FastAPI) -> list[str]:
    """`path: function` for every plain `def` dependency of the app's routes.

    FastAPI runs those in a worker thread, which costs more than any small dependency does (a
    tenth of a paged list's CPU, before `page_params` became `async def`). A dependency that really
    blocks belongs in a thread; one that only reads the request should be `async def`.
    """
    found: list[str] = []

    def visit(path: str, dependant: Dependant) -> None:
        for dependency in dependant.dependencies:
            call = dependency.call
            if inspect.isfunction(call) and not (
                inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
            ):
                found.append(f"{path}: {call.__module__}.{call.__qualname__}")
            visit(path, dependency)

    # Included routers stay routers in `app.routes`: this walks the routes they contain.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            visit(context.path or route.path, route.dependant)
    return sorted(set(found))
