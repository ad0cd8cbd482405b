"""`fluxfleet status`: the fleet at a glance, read-only, from a few Azure Resource Graph queries."""
