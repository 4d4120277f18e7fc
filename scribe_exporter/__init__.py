"""scribe-exporter: Scribe signature click analytics as Prometheus metrics."""

__version__ = "0.1.0"
