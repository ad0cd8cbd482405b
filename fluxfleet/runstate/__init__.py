"""Run state: journals, locks and durations, in files on this machine or in Azure Blob Storage beside Pulumi's
state (fluxfleet/runstate/store.py)."""
