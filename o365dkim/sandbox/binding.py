"""Cmdlet failures as the admin API reports them, and PowerShell-style parameter binding.

Exception type names and texts follow what the ExchangeOnlineManagement module and clients
that record live traffic show. Texts marked NOTE below are not taken from a recorded
response and only keep the documented meaning.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

VALIDATION_EXCEPTION = "Microsoft.Exchange.Management.Tasks.ValidationException"
ALREADY_EXISTS_EXCEPTION = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
NOT_FOUND_EXCEPTION = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
PARAMETER_BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"
COMMAND_NOT_FOUND_EXCEPTION = "System.Management.Automation.CommandNotFoundException"
DC_OVERLOADED_EXCEPTION = "Microsoft.Exchange.Data.Directory.DCOverloadedException"

# PowerShell common parameters that the gateway accepts on every cmdlet and that change
# nothing in the sandbox.
_COMMON_PARAMETERS = ("ErrorAction", "WarningAction", "Confirm")
# The server name that not-found messages mention; real ones name a directory server.
_DIRECTORY_SERVER = "SANDBOX01DC001.SANDBOX.PROD.OUTLOOK.COM"


class CmdletFailure(Exception):
    """A cmdlet error with everything the server needs to write the admin API's envelope.

    With ``status_code`` 403 the gateway sends a body of NUL bytes instead.
    """

    def __init__(
        self,
        status_code: int,
        error_code: str,
        exception_type: str,
        text: str,
        error_id: str | None = None,
    ) -> None:
        super().__init__(text)
        self.status_code = status_code
        self.error_code = error_code
        self.exception_type = exception_type
        self.text = text
        self.error_id = error_id if error_id is not None else _error_id(exception_type)

    @property
    def short_type(self) -> str:
        """The exception type without its namespace, such as ``ValidationException``."""
        return self.exception_type.rsplit(".", 1)[-1]

    @property
    def detail_message(self) -> str:
        """The ``details[0].message`` value: ``<error id>|<exception type>|<text>``."""
        return f"{self.error_id}|{self.exception_type}|{self.text}"


def validation_failure(text: str) -> CmdletFailure:
    """Return a 400 ValidationException failure."""
    return CmdletFailure(400, "BadRequest", VALIDATION_EXCEPTION, text)


def not_found_failure(identity: str, status_code: int = 404) -> CmdletFailure:
    """Return a ManagementObjectNotFoundException failure for ``identity``.

    Sources disagree whether the gateway uses 404 or 400 here, so the caller picks.
    """
    code = "NotFound" if status_code == 404 else "BadRequest"
    text = (
        f"The operation couldn't be performed because object '{identity}' couldn't be found "
        f"on '{_DIRECTORY_SERVER}'."
    )
    return CmdletFailure(status_code, code, NOT_FOUND_EXCEPTION, text)


def already_exists_failure(identity: str) -> CmdletFailure:
    """Return the ADObjectAlreadyExistsException failure of New-* for an existing object."""
    return CmdletFailure(
        400, "BadRequest", ALREADY_EXISTS_EXCEPTION, f"The object '{identity}' already exists."
    )


def unknown_cmdlet_failure(cmdlet: str) -> CmdletFailure:
    """Return the failure for a cmdlet the gateway does not expose (sent as 403, NUL body)."""
    text = (
        f"The term '{cmdlet}' is not recognized as a name of a cmdlet, function, script file, "
        "or executable program."
    )
    return CmdletFailure(403, "Forbidden", COMMAND_NOT_FOUND_EXCEPTION, text)


def transient_failure(status_code: int) -> CmdletFailure:
    """Return the DCOverloadedException failure that the module retries as transient."""
    code = "InternalServerError" if status_code >= 500 else "BadRequest"
    # NOTE: the text is written here; only the exception type is known from the module.
    text = "The domain controller is overloaded. Please try again later."
    return CmdletFailure(status_code, code, DC_OVERLOADED_EXCEPTION, text)


class BoundParameters:
    """A cmdlet's parameters bound as PowerShell does: names case-insensitive, values checked."""

    def __init__(self, raw: Mapping[str, Any], allowed: Iterable[str]) -> None:
        known = {name.lower(): name for name in (*allowed, *_COMMON_PARAMETERS)}
        self._values: dict[str, Any] = {}
        for name, value in raw.items():
            canonical = known.get(str(name).lower())
            if canonical is None:
                raise _binding_failure(
                    f"A parameter cannot be found that matches parameter name '{name}'."
                )
            self._values[canonical] = value

    def text(self, name: str, *, required: bool = False) -> str | None:
        """Return a string parameter, raising the mandatory-parameter error when required."""
        value = self._values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise _binding_failure(
                    "Cannot process command because of one or more missing mandatory "
                    f"parameters: {name}."
                )
            return None
        return str(value).strip()

    def boolean(self, name: str) -> bool | None:
        """Return a Boolean parameter; PowerShell also accepts the numbers 0 and 1."""
        value = self._values.get(name)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise _binding_failure(
            f"Cannot process argument transformation on parameter '{name}'. Cannot convert "
            f'value "{type(value).__name__}" to type "System.Boolean". Boolean parameters '
            "accept only Boolean values and numbers, such as $True, $False, 1 or 0."
        )

    def choice(self, name: str, allowed: tuple[int, ...]) -> int | None:
        """Return an integer parameter restricted to ``allowed`` (a ValidateSet)."""
        value = self._values.get(name)
        if value is None:
            return None
        try:
            number = int(str(value).strip())
        except ValueError:
            number = None
        if number not in allowed:
            accepted = ",".join(str(item) for item in allowed)
            raise _binding_failure(
                f"Cannot validate argument on parameter '{name}'. The argument \"{value}\" "
                f'does not belong to the set "{accepted}" specified by the ValidateSet '
                "attribute. Supply an argument that is in the set and then try the command again."
            )
        return number


def _binding_failure(text: str) -> CmdletFailure:
    return CmdletFailure(400, "BadRequest", PARAMETER_BINDING_EXCEPTION, text)


def _error_id(exception_type: str) -> str:
    """Return a stable id per exception type, shaped like the gateway's ``Ex6F9304`` ids."""
    return f"Ex{zlib.crc32(exception_type.encode('ascii')) & 0xFFFFFF:06X}"
