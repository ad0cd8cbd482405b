"""`pulumi up` entry point: read the stack spec from config, build the stack, export its ids."""

import pulumi

from modules.keyvault import KeyVaultReader, Secrets
from modules.spec import SpecError, spec_from_pulumi_config
from modules.stack import build_stack

try:
    stack = spec_from_pulumi_config()
except SpecError as error:
    raise pulumi.RunError(str(error)) from None  # a user's mistake: the message, not a traceback

for key, value in build_stack(stack.spec, Secrets(KeyVaultReader())).items():
    pulumi.export(key, value)
