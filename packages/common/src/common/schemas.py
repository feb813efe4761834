"""Field types a domain's schemas build on."""

from typing import Annotated

from pydantic import Field

# Postgres text cannot hold a NUL character: refused up front, as the schema says.
StorableText = Annotated[str, Field(pattern=r"^[^\x00]*$")]
