"""The request pipeline: identify, limit, inspect, decide, transform, route, upstream, inspect output, record."""
