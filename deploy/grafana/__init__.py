"""Grafana dashboards: their definition and the generated JSON."""
