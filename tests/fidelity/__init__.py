"""The official clients' own integration suites, run unchanged against the simulator."""
