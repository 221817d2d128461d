"""The vault: encrypts the access tokens that the meta API hands to an application's developer.

A token is stored as its SHA-256 digest (the lookup) and, for integrations of an application,
as a Fernet ciphertext (AES-128-CBC with an HMAC-SHA256) under the secret key, so the database
alone holds no usable token. The key comes from GATEWAY_SECRET_KEY, else from the file named by
GATEWAY_SECRET_KEY_FILE, else, for a SQLite database, from `<database file>.key` beside it,
created with mode 0600 on first use (the Quick start needs no setup). A PostgreSQL database is
shared by several machines, so there the key must be set: the vault says so instead of
inventing one.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url

from gateway.errors import GatewayError
from gateway.settings import Settings, SettingsError


class VaultUnavailable(SettingsError, GatewayError):
    """No usable secret key: the message says what to set. A command exits with it (code 1);
    an API shows it as INTERNAL_SERVER_ERROR with that message, which holds no secret."""

    def __init__(self, message: str) -> None:
        GatewayError.__init__(self, message)


def generate_key() -> str:
    """A fresh secret key (32 random bytes, URL-safe base64), for GATEWAY_SECRET_KEY."""
    return Fernet.generate_key().decode("ascii")


def _fernet(key: str, where: str) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeError):
        raise VaultUnavailable(
            f"{where} is not a secret key (32 bytes in URL-safe base64); "
            "`gateway secret-key generate` prints one"
        ) from None


def _read_key_file(path: Path, where: str) -> Fernet:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeError) as error:
        raise VaultUnavailable(f"{where} {str(path)!r} cannot be read: {error}") from None
    return _fernet(text, f"{where} {str(path)!r}")


def sqlite_key_path(database_url: str) -> Path | None:
    """The key file beside a SQLite database file, or None for another database (or memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}.key")


def _create_key_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first: use theirs
    except OSError as error:
        raise VaultUnavailable(
            f"the secret key file {str(path)!r} cannot be created ({error}); set "
            "GATEWAY_SECRET_KEY (`gateway secret-key generate` prints one)"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(generate_key() + "\n")


class Vault:
    """Encrypts and decrypts tokens; the key is resolved on first use (see the module doc)."""

    def __init__(self, secret_key: str | None, secret_key_file: str | None, database_url: str):
        self._secret_key = secret_key
        self._secret_key_file = secret_key_file
        self._database_url = database_url
        self._cipher: Fernet | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        """The vault of `settings` (GATEWAY_SECRET_KEY, _FILE and the database URL)."""
        return cls(settings.secret_key, settings.secret_key_file, settings.database_url)

    def _resolve(self) -> Fernet:
        if self._cipher is None:
            self._cipher = self._load()
        return self._cipher

    def _load(self) -> Fernet:
        if self._secret_key:
            return _fernet(self._secret_key, "GATEWAY_SECRET_KEY")
        if self._secret_key_file:
            return _read_key_file(Path(self._secret_key_file), "GATEWAY_SECRET_KEY_FILE")
        path = sqlite_key_path(self._database_url)
        if path is None:
            raise VaultUnavailable(
                "set GATEWAY_SECRET_KEY (or GATEWAY_SECRET_KEY_FILE) to a secret key, the same "
                "on every gateway machine, to store the access tokens of applications' "
                "integrations; `gateway secret-key generate` prints one"
            )
        _create_key_file(path)
        return _read_key_file(path, "the secret key file")

    def check(self) -> None:
        """Raise VaultUnavailable now when no key can be had."""
        self._resolve()

    def encrypt(self, token: str) -> str:
        """`token` encrypted (an ASCII string to store)."""
        return self._resolve().encrypt(token.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str | None:
        """The token in `ciphertext`, or None when this key did not encrypt it."""
        try:
            return self._resolve().decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            return None
