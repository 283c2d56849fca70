"""monitor: watch news feeds for DPRK–China–Russia events and alert subscribers."""

__version__ = "0.1.0"
