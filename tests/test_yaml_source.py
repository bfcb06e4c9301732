"""The YAML reader keeps lines through anchors, merges, flow style and custom tags."""

import pytest

from dbpoollint.yaml_source import YamlError, load_documents

COMPOSE = """\
x-common: &common
  environment:
    DATABASE_URL: postgresql://db:5432/app
services:
  db:
    image: postgres:16
    ports: ["6432:5432"]
    command: >
      postgres -c
      max_connections=50
  web:
    <<: *common
    image: app
  lambda: !Ref Handler
---
kind: Deployment
spec: {replicas: 3}
"""


def test_merge_key_brings_the_anchor_values_and_their_lines() -> None:
    web = load_documents(COMPOSE)[0]["services"]["web"]
    assert web["environment"]["DATABASE_URL"] == "postgresql://db:5432/app"
    assert web["environment"].key_line("DATABASE_URL") == 3
    assert web.key_line("image") == 13


def test_flow_sequences_and_folded_scalars_are_read() -> None:
    db = load_documents(COMPOSE)[0]["services"]["db"]
    assert db["ports"] == ["6432:5432"]
    assert db["ports"].item_line(0) == 7
    assert db["command"].split() == ["postgres", "-c", "max_connections=50"]


def test_every_document_and_custom_tags_load() -> None:
    first, second = load_documents(COMPOSE)
    assert first["services"]["lambda"] == "Handler"
    assert second["spec"]["replicas"] == 3


def test_invalid_yaml_is_an_error_with_its_line() -> None:
    with pytest.raises(YamlError) as error:
        load_documents("services:\n  db: [\n")
    assert error.value.line == 3
