"""Settings come from the environment, then the config file, then defaults."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mlgate.errors import ConfigError
from mlgate.plans.model import money
from mlgate.settings import Secret, Settings


def test_defaults_live_in_the_home_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"MLGATE_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'mlgate.db'}"
    assert settings.artifact_dir == tmp_path / "artifacts"
    assert settings.secret_key is None
    assert settings.max_rows == 10_000


def test_the_environment_beats_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("max_rows = 50\nmax_body_bytes = 2048\n")
    settings = Settings.from_env({"MLGATE_HOME": str(tmp_path), "MLGATE_MAX_ROWS": "7"})
    assert settings.max_rows == 7
    assert settings.max_body_bytes == 2048


def test_bad_values_say_which_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MLGATE_MAX_ROWS must be a whole number"):
        Settings.from_env({"MLGATE_HOME": str(tmp_path), "MLGATE_MAX_ROWS": "many"})
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.from_env(
            {"MLGATE_HOME": str(tmp_path), "MLGATE_CONFIG": str(tmp_path / "no.toml")}
        )
    (tmp_path / "config.toml").write_text("max_rows = [")
    with pytest.raises(ConfigError, match="could not be read"):
        Settings.from_env({"MLGATE_HOME": str(tmp_path)})


def test_secrets_do_not_show_themselves(tmp_path: Path) -> None:
    settings = Settings.from_env({"MLGATE_HOME": str(tmp_path), "MLGATE_SECRET_KEY": "s3cr3t"})
    assert settings.secret_key == Secret("s3cr3t")
    assert "s3cr3t" not in repr(settings)


def test_amounts_are_shown_in_the_configured_currency(tmp_path: Path) -> None:
    assert Settings.from_env({"MLGATE_HOME": str(tmp_path)}).currency == "USD"
    settings = Settings.from_env({"MLGATE_HOME": str(tmp_path), "MLGATE_CURRENCY": "eur"})
    assert settings.currency == "EUR"
    with pytest.raises(ConfigError, match="MLGATE_CURRENCY is a currency code"):
        Settings.from_env({"MLGATE_HOME": str(tmp_path), "MLGATE_CURRENCY": "€"})
    assert money(Decimal("12.5"), "EUR") == "EUR 12.50"
    assert money(Decimal("1234.567"), "USD") == "USD 1,234.57"
    assert money(Decimal("0.0035"), "USD", price=True) == "USD 0.0035"
    assert money(Decimal("2"), "USD", price=True) == "USD 2.00"
