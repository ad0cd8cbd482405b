"""What a command's exit code says, in one place, and the error a command's package raises to end with one.

The command line maps a `CommandError` to its lines on stderr and its exit code; nothing below the command line
imports typer or exits the process."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # refused, halted, failed, or what the command needs (Azure, Pulumi, a file) could not be used
    INVALID_INPUT = 2  # the options, a stack file, a profile or fleet.yaml: one line per problem, file and key
    FOUND = 3  # what the command looks for was found: drift, differences, something not healthy
    INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h): fluxfleet itself failed, not the input or the fleet


class CommandError(Exception):
    """Ends a command: each of `lines` on stderr (as written: they name their command), then `exit_code`."""

    def __init__(self, *lines: str, exit_code: ExitCode = ExitCode.FAILED):
        super().__init__("\n".join(lines))
        self.lines = lines
        self.exit_code = exit_code


class InvalidInput(CommandError):
    """Invalid input: exit 2."""

    def __init__(self, *lines: str):
        super().__init__(*lines, exit_code=ExitCode.INVALID_INPUT)

    @classmethod
    def of(cls, error, prefix: str = "") -> InvalidInput:
        """Every problem of a `SpecError`, one line each, after `prefix`."""
        return cls(*(f"{prefix}{issue}" for issue in error.issues))
