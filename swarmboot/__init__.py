"""swarmboot: a Docker Swarm on Linode from one small spec."""

__version__ = "0.1.0"

__all__ = ["__version__"]
