"""Settings: one home for each default, the environment read once (by click, or by from_env)."""

from __future__ import annotations

import click
import pytest

from campaigns.cli import cli
from campaigns.config import DEFAULT_READ_TIMEOUT, ENVIRONMENT, Secret, Settings


def test_from_env_reads_every_variable_and_options_win(monkeypatch):
    monkeypatch.setenv("ZHENZI_READ_TIMEOUT", "7.5")
    monkeypatch.setenv("ZHENZI_APP_SECRET", "from-env")
    monkeypatch.setenv("ZHENZI_CA_BUNDLE", "/etc/corp-ca.pem")
    monkeypatch.setenv("ZHENZI_INSECURE_TLS", "1")
    settings = Settings.from_env(app_id="mine", read_timeout=None)
    assert settings.read_timeout == 7.5
    assert isinstance(settings.app_secret, Secret) and settings.app_secret.reveal() == "from-env"
    assert (settings.ca_bundle, settings.insecure_tls, settings.app_id) == (
        "/etc/corp-ca.pem",
        True,
        "mine",
    )
    assert Settings.from_env(read_timeout=3.0).read_timeout == 3.0


@pytest.mark.parametrize("text", ["0", "", "no"])
def test_insecure_tls_is_off_unless_said(monkeypatch, text):
    monkeypatch.setenv("ZHENZI_INSECURE_TLS", text)
    assert Settings.from_env().insecure_tls is False


def test_the_cli_shows_the_settings_defaults_and_names_the_same_variables():
    options = {p.name: p for p in cli.params if isinstance(p, click.Option)}
    assert options["read_timeout"].default == Settings.read_timeout == DEFAULT_READ_TIMEOUT
    assert options["lookup_wait"].default == Settings.lookup_wait
    for name, variable in ENVIRONMENT.items():
        option = "db" if name == "db_url" else name
        assert options[option].envvar == variable


def test_a_plain_string_secret_is_wrapped_and_never_printed():
    settings = Settings(app_secret="plain")  # type: ignore[arg-type]
    assert settings.app_secret.reveal() == "plain"
    assert "plain" not in repr(settings)
