"""Sign-in authorities and admin API hosts of the Microsoft 365 clouds."""

from __future__ import annotations

from dataclasses import dataclass

from o365dkim.errors import InvalidInputError


@dataclass(frozen=True)
class Cloud:
    """Endpoints of one Microsoft 365 cloud."""

    name: str
    authority_host: str
    api_host: str

    @property
    def scope(self) -> str:
        """Return the token scope of the admin API (a Graph token is rejected)."""
        return f"https://{self.api_host}/.default"


CLOUDS = {
    "worldwide": Cloud("worldwide", "login.microsoftonline.com", "outlook.office365.com"),
    "gcc-high": Cloud("gcc-high", "login.microsoftonline.us", "outlook.office365.us"),
    "dod": Cloud("dod", "login.microsoftonline.us", "outlook-dod.office365.us"),
}


def get_cloud(name: str) -> Cloud:
    """Return the cloud called ``name`` or raise InvalidInputError listing the choices."""
    try:
        return CLOUDS[name.lower()]
    except KeyError:
        raise InvalidInputError(
            f"Invalid cloud '{name}': choose one of {', '.join(CLOUDS)}."
        ) from None
