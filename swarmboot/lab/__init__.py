"""A lab of real nodes on this machine, behind the simulator (`swarmboot sim --lab`)."""

__all__: list[str] = []
