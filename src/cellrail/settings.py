"""Settings from the environment (prefix ``CELLRAIL_``), validated, with defaults that work on one machine."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CELLRAIL_", extra="ignore")

    database_url: str = Field(
        "sqlite:///.cellrail/cellrail.db",
        description="SQLAlchemy URL of the store; e.g. postgresql+psycopg://user:pass@host/db",
    )
    token_hours: float = Field(12.0, gt=0, description="How long an API token stays valid")
    keys_dir: Path = Field(
        Path(".cellrail/keys"), description="Where the sites' private signing keys live (never in the database)"
    )
    site: str | None = Field(None, description="The node this server runs at: it cosigns other sites' checkpoints")
    checkpoint_every_events: int = Field(100, ge=1, description="Sign a checkpoint once a log grew this much")
    checkpoint_every_seconds: float = Field(60.0, gt=0, description="... or this long after it last grew")
