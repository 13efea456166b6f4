"""What every capability shares: identifiers, errors with field paths, clocks. Imports nothing from CellRail."""
