"""podnet: the Kubernetes network model on one Linux host, live and static."""

__version__ = "0.1.0"
