"""The Azure layer: every Azure read of the command line goes through here (see `status` for what it returns)."""
