"""The twin: a fast simulator of a whole network (centralized vs regional), for what-if studies."""
