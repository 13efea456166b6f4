"""Shared rendering of self-contained HTML reports (twin, landscape, oversight)."""
