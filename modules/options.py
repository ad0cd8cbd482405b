"""Resource options shared by the components."""

from __future__ import annotations

import pulumi


def child_options(
    parent: pulumi.ComponentResource, opts: pulumi.ResourceOptions | None, **options: object
) -> pulumi.ResourceOptions:
    """Options for a component's child: parented to it, and waiting for what the component waits for.

    Pulumi does not pass a component's `depends_on` to its children; without this the Flux configuration
    would not wait for the extension, nor the cluster for its resource providers.
    """
    return pulumi.ResourceOptions(parent=parent, depends_on=opts.depends_on if opts else None, **options)
