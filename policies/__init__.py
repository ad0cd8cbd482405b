"""The fluxfleet CrossGuard policy pack; its rules (rules.py) are shared with `fluxfleet plan`."""
