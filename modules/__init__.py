"""The fluxfleet Pulumi program: the stack spec and one component per file."""
