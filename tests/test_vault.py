"""The vault: where its key comes from, and what it does with tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.settings import Settings
from gateway.vault import Vault, VaultUnavailable, generate_key, sqlite_key_path

POSTGRES = "postgresql+asyncpg://gateway:gateway@127.0.0.1:55432/gateway"


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


def test_a_token_comes_back_from_its_ciphertext_and_is_not_in_it(tmp_path: Path) -> None:
    vault = Vault(generate_key(), None, sqlite_url(tmp_path))
    token = "tjC0M1mSvF9NUhF8KbN2Gt_cxqrSwhe2-7KLuN97RhQ"
    ciphertext = vault.encrypt(token)
    assert token not in ciphertext
    assert vault.encrypt(token) != ciphertext  # a fresh IV each time
    assert vault.decrypt(ciphertext) == token


def test_another_key_cannot_read_a_ciphertext(tmp_path: Path) -> None:
    ciphertext = Vault(generate_key(), None, sqlite_url(tmp_path)).encrypt("token")
    assert Vault(generate_key(), None, sqlite_url(tmp_path)).decrypt(ciphertext) is None
    assert Vault(generate_key(), None, sqlite_url(tmp_path)).decrypt("not a ciphertext") is None


def test_sqlite_without_a_setting_makes_a_private_key_file_once(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    path = tmp_path / "gateway.db.key"
    assert sqlite_key_path(url) == path
    ciphertext = Vault.from_settings(Settings(database_url=url)).encrypt("token")
    assert path.stat().st_mode & 0o777 == 0o600
    Fernet(path.read_text().strip().encode())  # a valid key
    # Another process (a new vault) reads the same file and so the same key.
    assert Vault.from_settings(Settings(database_url=url)).decrypt(ciphertext) == "token"
    assert path.read_text().count("\n") == 1


def test_the_setting_wins_over_the_key_file(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    key = generate_key()
    ciphertext = Vault(key, None, url).encrypt("token")
    assert not (tmp_path / "gateway.db.key").exists()
    assert Fernet(key.encode()).decrypt(ciphertext.encode()) == b"token"


def test_a_key_file_setting_is_read(tmp_path: Path) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text(generate_key() + "\n")
    vault = Vault.from_settings(Settings(database_url=POSTGRES, secret_key_file=str(key_file)))
    assert vault.decrypt(vault.encrypt("token")) == "token"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"database_url": POSTGRES},
            "set GATEWAY_SECRET_KEY (or GATEWAY_SECRET_KEY_FILE)",
            id="postgresql without a key",
        ),
        pytest.param(
            {"database_url": "sqlite+aiosqlite://"},
            "set GATEWAY_SECRET_KEY (or GATEWAY_SECRET_KEY_FILE)",
            id="sqlite in memory without a key",
        ),
        pytest.param(
            {"database_url": POSTGRES, "secret_key": "hunter2"},
            "GATEWAY_SECRET_KEY is not a secret key",
            id="a key that is not one",
        ),
        pytest.param(
            {"database_url": POSTGRES, "secret_key_file": "/nonexistent/key"},
            "GATEWAY_SECRET_KEY_FILE '/nonexistent/key' cannot be read",
            id="a key file that is not there",
        ),
    ],
)
def test_no_usable_key_is_a_clear_error(settings: dict[str, str], message: str) -> None:
    vault = Vault.from_settings(Settings(**settings))
    with pytest.raises(VaultUnavailable, match=message.replace("(", r"\(").replace(")", r"\)")):
        vault.encrypt("token")
    with pytest.raises(VaultUnavailable):
        vault.check()


def test_secret_key_generate_prints_a_fresh_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}

    def generate() -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "gateway", "secret-key", "generate"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
        return completed.stdout.strip()

    first, second = generate(), generate()
    assert first != second
    Fernet(first.encode())
