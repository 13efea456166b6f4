"""CellRail: the digital rail for decentralized cell and gene therapy networks."""

__version__ = "0.1.0"
