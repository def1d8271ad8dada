"""Node settings: sizes, and the precedence defaults < YAML < values kept by set_config < environment < command
line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from node import config_store
from node.settings import NodeSettings, env_name, load, parse_size


def plain(settings: NodeSettings) -> NodeSettings:
    """The settings without the path of the set_config file, which load() always fills in."""
    return replace(settings, set_config_file="")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4GB", 4 << 30),
        ("512MB", 512 << 20),
        ("1048576", 1048576),
        ("1.5GB", 3 << 29),
        ("64kb", 64 << 10),
        ("2 TB", 2 << 40),
        ("10B", 10),
        (" 3MB ", 3 << 20),
        ("0", 0),
        (".5KB", 512),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "   ", "GB", "MB4", "4XB", "4GBB", "-1GB", "1.5.GB", "0x10", "four", "inf", "nan", "infGB", "4 G"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_defaults() -> None:
    s = load(None, {}, {})
    assert plain(s) == NodeSettings()
    assert s.set_config_file == "data/node-config/standalone.yaml"
    assert (s.role, s.port, s.version) == ("standalone", 19530, "1.1.1")
    assert s.cache_bytes == 4 << 30
    assert s.insert_buffer_bytes == 1 << 30
    assert s.wal_file_bytes == 64 << 20


def test_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "node.yaml"
    cfg.write_text("port: 1000\nhost: 0.0.0.0\ncache_size: 1GB\nsearch_threads: 3\n", encoding="utf-8")
    env = {
        env_name("port"): "2000",
        env_name("cache_size"): "2GB",
        "MISHARDS_NODE_OMP_THREADS": "5",
        "UNRELATED": "x",
    }
    s = load(str(cfg), env, {"port": 3000, "role": None})
    assert s.port == 3000  # command line wins
    assert s.cache_size == "2GB"  # environment beats the file
    assert s.omp_threads == 5  # environment beats the default, coerced to int
    assert s.host == "0.0.0.0" and s.search_threads == 3  # file beats the default
    assert s.role == "standalone"  # None overrides are ignored
    assert s.log_level == "INFO"


def test_yaml_node_section_and_dashes(tmp_path: Path) -> None:
    cfg = tmp_path / "node.yaml"
    cfg.write_text("node:\n  role: ro\n  auto-flush-interval: 0\n  meta_uri: sqlite:///x.db\n", encoding="utf-8")
    s = load(str(cfg), {}, {})
    assert s.role == "ro"
    assert s.auto_flush_interval == 0.0 and isinstance(s.auto_flush_interval, float)
    assert s.catalog_uri == "sqlite:///x.db"


def test_empty_yaml_file(tmp_path: Path) -> None:
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("", encoding="utf-8")
    assert plain(load(str(cfg), {}, {})) == NodeSettings()


def test_catalog_uri_defaults_to_sqlite_under_storage(tmp_path: Path) -> None:
    s = load(None, {}, {"storage_path": str(tmp_path)})
    assert s.catalog_uri == f"sqlite:///{(tmp_path / 'meta.sqlite').resolve()}"


def test_unknown_key_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "node.yaml"
    cfg.write_text("prot: 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        load(str(cfg), {}, {})


def test_unknown_override() -> None:
    with pytest.raises(ValueError, match="unknown setting 'bogus' in command line"):
        load(None, {}, {"bogus": 1})


def test_unknown_environment_names_are_ignored() -> None:
    assert plain(load(None, {"MISHARDS_NODE_BOGUS": "1"}, {})) == NodeSettings()


def test_yaml_not_a_mapping(tmp_path: Path) -> None:
    cfg = tmp_path / "node.yaml"
    cfg.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a mapping"):
        load(str(cfg), {}, {})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "master"}, "role must be one of standalone, rw, ro"),
        ({"port": 70000}, "port out of range"),
        ({"port": -1}, "port out of range"),
        ({"auto_flush_interval": -0.5}, "auto_flush_interval"),
        ({"cache_size": "lots"}, "invalid size"),
        ({"wal_file_size": "inf"}, "invalid size"),
        ({"search_threads": 0}, "thread counts"),
        ({"port": "not-a-number"}, "invalid literal"),
    ],
)
def test_invalid_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(None, {}, overrides)


def test_invalid_role_from_environment() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        load(None, {"MISHARDS_NODE_ROLE": "leader"}, {})


def test_values_kept_by_set_config_sit_between_the_file_and_the_environment(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    cfg = tmp_path / "node.yaml"
    cfg.write_text(f"storage_path: {storage}\ncache_size: 1GB\nhost: 10.0.0.1\nlog_level: ERROR\n", encoding="utf-8")
    config_store.write(str(storage / "node-config" / "rw-19531.yaml"), {
        "cache.cache_size": "2GB", "cache.insert_buffer_size": "256m", "network.bind.address": "0.0.0.0",
        "storage.auto_flush_interval": "7", "logs.level": "warning", "general.timezone": "UTC+1"})
    s = load(str(cfg), {env_name("auto_flush_interval"): "3"}, {"role": "rw", "port": 19531, "log_level": "DEBUG"})
    assert s.set_config_file == str(storage / "node-config" / "rw-19531.yaml")
    assert s.cache_size == "2GB"  # kept beats the file
    assert s.insert_buffer_bytes == 256 << 20  # 1.1's "256m", in the node's own size syntax
    assert s.host == "0.0.0.0"
    assert s.auto_flush_interval == 3.0  # the environment beats kept
    assert s.log_level == "DEBUG"  # the command line beats kept


def test_kept_values_are_found_by_the_settings_the_node_starts_with(tmp_path: Path) -> None:
    # A kept role or port does not move the file: it is named from the settings before the kept values.
    path = tmp_path / "node-config" / "ro-19540.yaml"
    config_store.write(str(path), {"cluster.role": "rw", "network.bind.port": "19541"})
    cfg = tmp_path / "node.yaml"
    cfg.write_text(f"role: ro\nport: 19540\nstorage_path: {tmp_path}\n", encoding="utf-8")
    s = load(str(cfg), {}, {})
    assert (s.role, s.port, s.set_config_file) == ("rw", 19541, str(path))  # kept beats the file
    assert load(str(cfg), {}, {"port": 19540}).port == 19540  # the command line beats kept
    other = load(str(cfg), {env_name("port"): "19542"}, {})
    assert (other.role, other.port) == ("ro", 19542)  # another node (ro-19542.yaml): nothing kept


def test_set_config_file_setting_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    config_store.write(str(path), {"storage.auto_flush_interval": "0"})
    s = load(None, {}, {"set_config_file": str(path), "storage_path": str(tmp_path / "s")})
    assert s.auto_flush_interval == 0.0 and s.set_config_file == str(path)


def test_a_kept_file_that_is_not_a_mapping_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "node-config" / "standalone.yaml"
    path.parent.mkdir()
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a mapping of server config keys"):
        load(None, {}, {"storage_path": str(tmp_path)})
