"""Landscape: where cell and gene therapy trials start, by country, year and modality, from registry data."""
