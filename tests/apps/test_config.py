import pytest

from apps.config import ConfigError, load_config, to_yaml
from apps.sentiment import SentimentConfig


def test_defaults_files_then_overrides(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("model:\n  units: 16\n  pooling: max\ntrain:\n  epochs: 9\n")
    b = tmp_path / "b.yaml"
    b.write_text("model:\n  units: 32\n")
    config = load_config(SentimentConfig, files=[a, b], overrides=["train.epochs=3", "data.max_length=none",
                                                                   "data.source=synthetic?size=50"])
    assert config.model.units == 32  # rightmost file wins
    assert config.model.pooling == "max"
    assert config.train.epochs == 3  # --set beats files
    assert config.data.max_length is None
    assert load_config(SentimentConfig, overrides=["train.clipping=none"]).train.clipping == "none"  # a choice
    assert config.data.source == "synthetic?size=50"
    assert config.train.learning_rate == SentimentConfig().train.learning_rate
    # YAML 1.1 (PyYAML) reads 1e-3 as a string; a float setting takes it as the number
    assert load_config(SentimentConfig, overrides=["train.learning_rate=1e-3"]).train.learning_rate == 0.001
    a.write_text("train:\n  learning_rate: 5E-4\n")
    assert load_config(SentimentConfig, files=[a]).train.learning_rate == 0.0005


def test_yaml_round_trip(tmp_path):
    config = load_config(SentimentConfig, overrides=["model.units=7", "data.max_length=33"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(config))
    assert load_config(SentimentConfig, files=[path]) == config


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.unit=3", r"unknown config key 'model.unit'; did you mean 'model.units'\?"),
        ("nonsense=3", r"unknown config key 'nonsense'; keys near it: app, seed, data.source"),
        ("model.units=abc", r"config key 'model.units' expects int, received 'abc'"),
        ("model.units=1.5", r"expects int, received 1.5"),
        ("model.units=1e3", r"expects int, received '1e3'"),
        ("train.learning_rate=fast", r"expects float, received 'fast'"),
        ("data.bucketing=maybe", r"expects bool"),
        ("model.pooling=median", r"must be one of \['last', 'max', 'mean'\], received 'median'"),
        ("model=3", r"is a section"),
        ("units", r"--set expects key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SentimentConfig, overrides=[override])


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  colour: red\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'model.colour'"):
        load_config(SentimentConfig, files=[bad])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(SentimentConfig, files=[tmp_path / "missing.yaml"])
    (tmp_path / "other.yaml").write_text("app: translation\nmodel:\n  encoder_cell: gru\n")
    with pytest.raises(ConfigError, match=r"other.yaml is a translation config, not a sentiment one: "
                                          r"rnnapps train translation --config"):
        load_config(SentimentConfig, files=[tmp_path / "other.yaml"])
    with pytest.raises(ConfigError) as error:
        load_config(SentimentConfig, overrides=["model.encoder_cell=gru"])
    assert len(str(error.value)) < 200  # the closest keys, not all of them
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(SentimentConfig, files=[tmp_path / "list.yaml"])
