"""What an OpenEnv environment ships: openenv.yaml (read by OpenEnv's own validator), its ASGI app, the Dockerfile,
and the serve extra pinned as make test installs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fairgym.serve.app import ServeConfig, config_from_environ

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "serve"


def test_openenv_yaml_is_a_valid_openenv_manifest():
    from openenv.validation.parsers.openenv_yaml import OpenEnvYamlParser

    manifest = OpenEnvYamlParser().parse(SERVE)
    assert manifest.reward.range == (-1.0, 50.0)
    raw = yaml.safe_load((SERVE / "openenv.yaml").read_text())
    module, attribute = raw["app"].split(":")
    assert module == "fairgym.serve.asgi" and attribute == "app" and raw["port"] == 8000


def test_the_asgi_app_reads_its_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("FAIRGYM_SERVE_ENVS", "fairgym/Lending-v0, fairgym/Dialogue-v1")
    monkeypatch.setenv("FAIRGYM_SERVE_SESSION_TIMEOUT", "30")
    import importlib

    import fairgym.serve.asgi as asgi

    app = importlib.reload(asgi).app
    assert app.idle_timeout == 30.0 and callable(app)
    assert config_from_environ({"FAIRGYM_SERVE_MAX_SESSIONS": "8"}).max_sessions == 8
    with pytest.raises(ValueError, match="FAIRGYM_SERVE_MAX_SESSIONS='many' must be a number"):
        config_from_environ({"FAIRGYM_SERVE_MAX_SESSIONS": "many"})


def test_serve_config_rejects_bad_values_with_the_field_named():
    with pytest.raises(ValueError, match="Did you mean 'fairgym/Lending-v0'"):
        ServeConfig(envs=["fairgym/Lendng-v0"])
    with pytest.raises(ValueError, match="ServeConfig.max_sessions=0 must be an int >= 1"):
        ServeConfig(max_sessions=0)
    with pytest.raises(ValueError, match="serving fairgym/Lending-v0 with env arguments .* Serve fewer envs"):
        ServeConfig(env_kwargs={"budget": 4}).catalog()  # an Allocation argument, not Dialogue's


def test_the_dockerfile_installs_the_pinned_extra_and_serves_on_all_interfaces():
    dockerfile = (SERVE / "Dockerfile").read_text()
    for name in re.findall(r"-r (requirements[\w-]*\.txt)", dockerfile):
        assert (ROOT / name).exists(), name
    assert 'CMD ["fairgym", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile


def test_the_serve_extra_matches_the_pins_make_test_installs():
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    pins = {}
    for path in ROOT.glob("requirements-serve*.txt"):
        for line in path.read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split("==")
                pins[name.strip().lower()] = version.strip()
    for requirement in extra:
        if "==" in requirement:
            name, version = requirement.split("==")
            assert pins.get(name.lower()) == version, requirement
    makefile = (ROOT / "Makefile").read_text()
    assert "-r requirements-serve.txt" in makefile and "--no-deps -r requirements-serve-nodeps.txt" in makefile
