"""`fluxfleet runs`: the rollouts kept in the run-state store, and where each stands."""
