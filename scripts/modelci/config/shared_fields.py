"""The readers of the fields that more than one section of `mlops.yaml` holds.

A pod's `resources` (train, batch, each DAG, online, monitoring), a file of the repository
(train's and a DAG's entrypoint, the review's sample), a threshold's `min` and `max` (the gate's
metrics, the monitoring's ground truth), a Spark driver or executors, and the arguments of a
Spark training (train.spark and a training DAG). `SharedFields` adds them to the `Walker`, with
the repository root the paths are checked against; every section mixin is built on it, so none
of them needs another.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml.comments import CommentedMap

from .checks import (
    Invalid,
    as_cpu,
    as_gpu,
    as_memory,
    as_one_of,
    as_optional_number,
    as_spark_cores,
    as_spark_instances,
    as_spark_memory,
    as_text,
    describe,
    spark_executors_problem,
)
from .fields import ENGINES, section
from .types import Resources, SparkPart
from .walker import Walker, join_path

_RESOURCES = section("models.train.resources")

as_engine = as_one_of(ENGINES)  # train.engine and a DAG's engine


class SharedFields(Walker):
    """A `Walker` of the document of `file` whose paths are relative to `repo_root`."""

    def __init__(self, file: str, repo_root: Path) -> None:
        super().__init__(file)
        self.repo_root = repo_root

    def resources(self, container: CommentedMap | None, path: str, default: Resources) -> Resources:
        """`container.resources`, each omitted field taken from `default`."""
        path = join_path(path, "resources")
        resources = self.mapping(container, "resources", path, _RESOURCES.keys())
        if resources is None:
            return default
        return Resources(
            cpu=self.value(resources, "cpu", path, as_cpu, default.cpu),
            memory=self.value(resources, "memory", path, as_memory, default.memory),
            gpu=self.value(resources, "gpu", path, as_gpu, default.gpu),
        )

    def entrypoint(self, value: Any) -> str:
        """A file path relative to the repository root that exists inside it."""
        text = as_text(value, "train.py")
        root = self.repo_root.absolute()
        if (
            PurePosixPath(text).is_absolute()
            or text.startswith("~")
            or re.match(r"[A-Za-z]:", text)
        ):
            raise Invalid(
                f'found the absolute path "{text}"; expected a path relative to the repository '
                f'root ({root}), e.g. "train.py".'
            )
        normal = posixpath.normpath(text)
        try:
            return self.repository_file(text, normal, root)
        except OSError as error:  # a name too long, a loop of symlinks...
            raise Invalid(
                f"found {describe(text)}, a path that cannot be looked at ({error.strerror}); "
                "expected the path of a file in the repository."
            ) from None

    @staticmethod
    def repository_file(text: str, normal: str, root: Path) -> str:
        """`normal` if it names a file inside `root`; else Invalid saying why."""
        target = root / normal
        if normal == ".." or normal.startswith("../") or not _inside(target, root):
            raise Invalid(
                f'found "{text}", which points outside the repository root ({root}); '
                "expected a path inside it."
            )
        if not target.is_file():
            # Named relative to the root: the absolute path is the CI runner's, not the user's.
            state = "is a directory" if target.is_dir() else "does not exist"
            raise Invalid(
                f'found "{text}", but {normal} {state} in the repository; expected a file. '
                "Fix the path (relative to the repository root) or add the file."
            )
        return normal

    def bounds(self, mapping: CommentedMap, path: str) -> tuple[float | None, float | None]:
        """`min` and `max` of a threshold: at least one of them, min <= max."""
        low = self.value(mapping, "min", path, as_optional_number, None)
        high = self.value(mapping, "max", path, as_optional_number, None)
        if mapping.get("min") is None and mapping.get("max") is None:
            self.report_at_node(
                mapping,
                path,
                "the threshold has neither min nor max; add min: (pass when the metric is at "
                "least that) or max: (pass when it is at most that), or both.",
            )
        elif low is not None and high is not None and low > high:
            self.report(
                mapping,
                "max",
                join_path(path, "max"),
                f"found max {high:g} below min {low:g}; no value can pass. Swap or fix them.",
            )
        return low, high

    def spark_part(self, part: CommentedMap | None, path: str, default: SparkPart) -> SparkPart:
        return SparkPart(
            cores=self.value(part, "cores", path, as_spark_cores, default.cores),
            memory=self.value(part, "memory", path, as_spark_memory, default.memory),
            instances=self.value(part, "instances", path, as_spark_instances, default.instances),
        )

    def spark_executors(
        self, executor: CommentedMap | None, path: str, part: SparkPart, job: str = "training"
    ) -> None:
        """The executors of one training together within what a cluster gives one job, reported
        at `instances`. The default 2 executors stay within it at any valid cores and memory."""
        if executor is None or "instances" not in executor:
            return
        if None in (part.instances, part.cores, part.memory):
            return  # an invalid field: reported already
        problem = spark_executors_problem(part.instances, part.cores, part.memory, job)
        if problem:
            self.report(executor, "instances", join_path(path, "instances"), problem)

    def no_run_values(self, train: CommentedMap | None, path: str) -> None:
        """A SparkApplication is submitted as written: `${ds}` would reach the entrypoint as is."""
        args = train.get("args") if train is not None else None
        for index, arg in enumerate(args if isinstance(args, list) else []):
            if isinstance(arg, str) and "${" in arg.replace("$${", ""):
                self.report(
                    args,
                    index,
                    f"{path.removesuffix('.spark')}.args[{index}]",
                    f"found {describe(arg)}; a Spark training's arguments cannot use run values "
                    "such as ${ds} (the SparkApplication is submitted as written). Remove it.",
                )


def _inside(target: Path, root: Path) -> bool:
    """Whether target, with symlinks resolved, stays under root."""
    return target.resolve().is_relative_to(root.resolve())
