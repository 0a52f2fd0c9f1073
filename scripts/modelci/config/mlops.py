"""The model config file (`mlops.yaml`) a data scientist keeps in a model repository.

`load_config` reads and validates it into the typed form of `types.py`; this module is the one
public entry for it. The loader is composed the way python-gitlab composes its managers: a small
base that walks the document and collects every problem with its position (`walker.py`), the
fields several sections share (`shared_fields.py`), one mixin per group of sections
(`training_sections.py`, `batch_sections.py`, `online_sections.py`, `monitoring_sections.py`),
and here the file's top level (`version`, `python`, `image`, `code`, `stands`, `models`) that
puts each model together. Pure: no I/O beyond reading the file itself and checking that the
entry points it names exist; no knowledge of MLflow, git, S3 or GitLab. The checks of single
values, with the limits of the systems downstream, are in `checks.py`. The structure (the keys
of each section, which are required) comes from `fields.py`, which also generates the JSON
Schema and docs/data-scientists/mlops-yaml-reference.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ..errors import ConfigError
from .batch_sections import BatchSections
from .checks import (
    as_bool,
    as_flavor,
    as_image,
    as_model_name,
    as_python,
    as_stand_name,
    as_text,
    as_version,
    wrong,
)
from .fields import section
from .monitoring_sections import MonitoringSections
from .online_sections import OnlineSections
from .training_sections import TrainingSections
from .types import Code, Config, Model, Stand
from .walker import join_path, none_fix
from .yamlio import read_yaml

CONFIG_FILE_NAME = "mlops.yaml"
DEFAULT_PYTHON = "3.11"
# The stands of ci-templates/full.yml's defaults: the first after every merge, the last by a
# manual job. A config without `stands:` therefore works with full.yml as it comes.
DEFAULT_STANDS = (Stand(name="staging"), Stand(name="production", manual=True))

_TOP = section("")
_CODE = section("code")
_STAND = section("stands")
_MODEL = section("models")


def load_config(path: Path, repo_root: Path | None = None) -> Config:
    """Read and validate a model config file.

    Entry points are checked relative to `repo_root` (default: the file's directory). Raises
    ConfigError listing every problem found, each with file, line, field path and fix.
    """
    path = Path(path)
    document = read_yaml(path)
    loader = _Loader(str(path), Path(repo_root) if repo_root is not None else path.parent)
    config = loader.config(document)  # holds None where a value was invalid: not returned then
    if loader.problems:
        raise ConfigError(sorted(loader.problems, key=lambda p: (p.line or 0, p.column or 0)))
    return config


class _Loader(TrainingSections, BatchSections, OnlineSections, MonitoringSections):
    """Reads the whole file: its top level here, each model's sections by the mixins."""

    def config(self, document: CommentedMap) -> Config:
        self.check_keys(document, "", _TOP.keys(), required=_TOP.required_keys())
        return Config(
            path=self.file,
            version=self.value(document, "version", "", as_version, None, required=True),
            python=self.value(document, "python", "", as_python, DEFAULT_PYTHON),
            image=self.value(document, "image", "", as_image, None),
            models=self.models(document),
            stands=self.stands(document),
            code=self.code(document),
        )

    def code(self, document: CommentedMap) -> Code:
        """`code.exclude`: what the code archive leaves out (data the pods do not need)."""
        code = self.mapping(document, "code", "code", _CODE.keys())
        items = self.sequence(
            code,
            "exclude",
            "code.exclude",
            what="paths or globs",
            example='For example: exclude: ["data/**", "**/*.parquet"]',
        )
        patterns = (
            self.checked(
                items, index, f"code.exclude[{index}]", _as_code_glob, none_fix(index, False)
            )
            for index, _ in enumerate(items)
        )
        return Code(exclude=tuple(pattern for pattern in patterns if pattern is not None))

    def stands(self, document: CommentedMap) -> tuple[Stand, ...]:
        if "stands" not in document:
            return DEFAULT_STANDS
        items = self.sequence(
            document,
            "stands",
            "stands",
            what="stands",
            example="For example: stands: [{name: production}]",
            at_least_one="stand",
        )
        stands, seen = [], {}
        for path, stand in self.mappings(items, "stands", _STAND.keys(), _STAND.required_keys()):
            name = self.value(stand, "name", path, as_stand_name, None, required=True)
            self.unique(seen, name, stand, "name", path, "stand name")
            stands.append(
                Stand(name=name, manual=self.value(stand, "manual", path, as_bool, False))
            )
        return tuple(stands)

    def models(self, document: CommentedMap) -> tuple[Model, ...]:
        items = self.sequence(
            document,
            "models",
            "models",
            what="models",
            example="See docs/data-scientists/mlops-yaml.md.",
            at_least_one="model",
        )
        models, seen = [], {}
        required = _MODEL.required_keys()
        for path, model in self.mappings(items, "models", _MODEL.keys(), required):
            name = self.value(model, "name", path, as_model_name, None, required=True)
            self.unique(seen, name, model, "name", path, "model name")
            train = self.train(model, path)
            batch = self.batch(model, path, train)
            monitoring = self.monitoring(model, path)
            if monitoring is not None:
                batch = self.with_monitoring_dag(model, path, batch, monitoring)
                self.monitoring_reads_spark_output(model, path, batch, monitoring)
            models.append(
                Model(
                    name=name,
                    flavor=self.value(model, "flavor", path, as_flavor, None, required=True),
                    train=train,
                    gate=self.gate(model, path),
                    batch=batch,
                    online=self.online(model, path),
                    monitoring=monitoring,
                    review=self.review(model, path),
                )
            )
            self.spark_model_not_served(model, path, models[-1])
        return tuple(models)

    def spark_model_not_served(self, mapping: CommentedMap, path: str, model: Model) -> None:
        """A Spark ML model (`flavor: spark`) loads only into a SparkSession: neither online
        serving nor an inference DAG's pod can load it (spark.py)."""
        from ..render.spark import SPARK_FLAVOR, spark_model_problem

        if model.flavor != SPARK_FLAVOR:
            return
        problem = spark_model_problem(model, f"flavor: {SPARK_FLAVOR}")
        if problem:
            self.report(mapping, "flavor", join_path(path, "flavor"), f"{problem}.")


def _as_code_glob(value: Any) -> str:
    """A path or glob relative to the repository root, as git's `:(exclude,glob)` pathspec
    reads it: `*` within a name, `**` across directories; a directory leaves out all below."""
    text = as_text(value, "data/**")
    expected = 'a path or glob relative to the repository root, e.g. "data/**" or "*.parquet"'
    if text.startswith(("/", ":", "!")):
        fix = "Write it relative to the repository root, without a leading / or : (no negation)."
        raise wrong(value, expected, fix)
    if "\\" in text or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise wrong(value, expected, "Write it without a backslash or a control character.")
    if any(part in ("", ".", "..") for part in text.removesuffix("/").split("/")):
        raise wrong(value, expected, "Write it without an empty, . or .. part.")
    return text
