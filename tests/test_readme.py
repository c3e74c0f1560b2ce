"""The README's Python snippets run as written (in a directory holding the run and the export
they name: runs/s1 and exports/s1)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory):
    from apps.config import replace
    from apps.sentiment import Sentiment, SentimentConfig

    directory = tmp_path_factory.mktemp("readme")
    app = Sentiment()
    app.train(replace(SentimentConfig.smoke(), **{"train.epochs": 1}), directory / "runs" / "s1")
    app.export(directory / "runs" / "s1", directory / "exports" / "s1", ["savedmodel"])
    return directory


def test_the_readme_has_snippets():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs_as_written(index, readme_dir, monkeypatch):
    monkeypatch.chdir(readme_dir)
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})
