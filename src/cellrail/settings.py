"""Settings from the environment (prefix ``CELLRAIL_``), validated, with defaults that work on one machine."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CELLRAIL_", extra="ignore")

    database_url: str = Field(
        "sqlite:///.cellrail/cellrail.db",
        description="SQLAlchemy URL of the store; e.g. postgresql+psycopg://user:pass@host/db",
    )
    token_hours: float = Field(12.0, gt=0, description="How long an API token stays valid")
