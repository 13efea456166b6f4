"""The store: SQLAlchemy 2 tables, Alembic migrations and the unit of work behind the rail's protocols."""
