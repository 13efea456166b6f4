"""The demo: synthetic patient journeys played through the rail's service layer."""
