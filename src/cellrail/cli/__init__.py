"""The `cellrail` command: parse arguments, call one use case, print the answer."""
