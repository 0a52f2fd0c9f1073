"""MLflow's model registry: `RegistryMixin`, one part of `tracking.Tracker`.

Registered model versions, the aliases that name the version each stand serves, and the
versions' tags: the promote, rollback and deploy-version jobs register versions and move
aliases; the gate and the merge request review read what a stand serves and has served.
Apart from the runs and logged models because the registry is the part a stand job writes
with its own credentials (so a refusal there has to be told apart from a missing model); of
the other parts it asks only for a run's metrics and its model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .mlflow_base import MlflowBase, filter_literal
from .mlflow_rest import LoggedModel, RestError
from .mlflow_uris import LoggedModelUri, parse_model_uri


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version: what a stand serves."""

    name: str
    version: str
    run_id: str
    source: str  # models:/m-<id> (MLflow 3) or the artifact location
    tags: dict[str, str]
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class RegistryMixin(MlflowBase):
    """Registered models, their versions, aliases and version tags."""

    # The other parts of `Tracker`: RunsMixin's and ModelsMixin's.
    run_metrics: Callable[[str], dict[str, float]]
    model_uri_for_run: Callable[[str], str]
    _logged_model: Callable[[str], LoggedModel]

    def register_version(
        self, registered_model: str, model_uri: str, run_id: str, tags: Mapping[str, str]
    ) -> str:
        """Register `model_uri` as a new version (creating the registered model); its number."""
        self._call(
            f"create registered model '{registered_model}'",
            self._client.create_registered_model,
            registered_model,
            none_on=("RESOURCE_ALREADY_EXISTS",),
        )
        reference = parse_model_uri(model_uri)
        # MLflow 3 accepts a models:/m-<id> source only together with the model's id.
        model_id = reference.model_id if isinstance(reference, LoggedModelUri) else None
        version = self._call(
            f"register a version of '{registered_model}'",
            self._client.create_model_version,
            registered_model,
            model_uri,
            run_id=run_id,
            tags=dict(tags),
            model_id=model_id,
        )
        return str(version.version)

    def version_for_run(
        self, registered_model: str, run_id: str, tags: Mapping[str, str]
    ) -> tuple[ModelVersionInfo, bool]:
        """The version of `registered_model` registered from `run_id`, registering the run's
        model first (with `tags`) when there is none; True when it was registered now."""
        version = self.version_of_run(registered_model, run_id)
        if version is not None:
            return version, False
        number = self.register_version(
            registered_model, self.model_uri_for_run(run_id), run_id, tags
        )
        return self.model_version(registered_model, number), True

    def set_alias(self, registered_model: str, alias: str, version: str) -> None:
        self._call(
            f"point alias '{alias}' of '{registered_model}' at version {version}",
            self._client.set_registered_model_alias,
            registered_model,
            alias,
            version,
        )

    def set_version_tags(
        self, registered_model: str, version: str, tags: Mapping[str, str]
    ) -> None:
        for key, value in tags.items():
            self._call(
                f"tag version {version} of '{registered_model}'",
                self._client.set_model_version_tag,
                registered_model,
                str(version),
                key,
                value,
            )

    # -- reads --------------------------------------------------------------------------------

    def served_metrics(self, registered_model: str, alias: str) -> dict[str, float] | None:
        """Metrics of the run behind models:/<name>@<alias>; None when there is no such model."""
        model = self._call(
            f"read registered model '{registered_model}'",
            self._client.get_registered_model,
            registered_model,
            none_on=("RESOURCE_DOES_NOT_EXIST",),
        )
        version = (model.aliases or {}).get(alias) if model is not None else None
        if version is None:
            return None
        entity = self._call(
            f"read version {version} of registered model '{registered_model}'",
            self._client.get_model_version,
            registered_model,
            str(version),
        )
        run_id = entity.run_id
        if not run_id and getattr(entity, "model_id", None):
            run_id = self._logged_model(entity.model_id).source_run_id
        return self.run_metrics(run_id) if run_id else {}

    def stand_version(self, registered_model: str, stand: str) -> ModelVersionInfo | None:
        """The version the alias `stand` points at; None without the model or the alias."""
        what = f"read alias '{stand}' of registered model '{registered_model}'"
        try:
            entity = self._call(
                what,
                self._client.get_model_version_by_alias,
                registered_model,
                stand,
                none_on=("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"),
                denied_raw=True,
            )
        except RestError as denied:
            # MLflow's auth app answers 403, not 404, to a user without a permission of their
            # own who reads an alias of a registered model that does not exist (yet).
            if not self._registered_model_exists(registered_model):
                return None
            raise self._translate(what, denied) from None
        return self._version_info(entity) if entity is not None else None

    def stand_versions(
        self, registered_model: str, stand: str, limit: int = 20
    ) -> list[ModelVersionInfo]:
        """The versions `stand` has served, newest first, at most `limit`: those whose audit
        tags (`modelci.stand.<stand>.*`) say a stand job moved its alias there, and the one
        the alias names now."""
        if not self._registered_model_exists(registered_model):
            return []
        found = self._newest_versions(registered_model, 1000)
        prefix = f"modelci.stand.{stand}."
        served = [
            version
            for version in found
            if stand in (version.aliases or ()) or any(k.startswith(prefix) for k in version.tags)
        ]
        served.sort(key=lambda version: int(version.version), reverse=True)
        return [self._version_info(version) for version in served[:limit]]

    def model_version(self, registered_model: str, version: str) -> ModelVersionInfo | None:
        entity = self._call(
            f"read version {version} of registered model '{registered_model}'",
            self._client.get_model_version,
            registered_model,
            str(version),
            none_on=("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"),
        )
        return self._version_info(entity) if entity is not None else None

    def version_of_run(self, registered_model: str, run_id: str) -> ModelVersionInfo | None:
        """The newest version of `registered_model` registered from `run_id`, if any."""
        found = self._call(
            f"search the versions of '{registered_model}'",
            self._client.search_model_versions,
            f"name = {filter_literal(registered_model)} and run_id = {filter_literal(run_id)}",
        )
        versions = sorted((self._version_info(v) for v in found), key=lambda v: int(v.version))
        return versions[-1] if versions else None

    def latest_version_number(self, registered_model: str) -> int | None:
        """The highest version number of `registered_model`; None when it has none."""
        found = self._newest_versions(registered_model, 1)
        return max((int(version.version) for version in found), default=None)

    def _newest_versions(self, registered_model: str, max_results: int) -> Any:
        return self._call(
            f"search the versions of '{registered_model}'",
            self._client.search_model_versions,
            f"name = {filter_literal(registered_model)}",
            max_results=max_results,
            order_by=["version_number DESC"],
        )

    def _registered_model_exists(self, registered_model: str) -> bool:
        found = self._call(
            f"read registered model '{registered_model}'",
            self._client.get_registered_model,
            registered_model,
            none_on=("RESOURCE_DOES_NOT_EXIST",),
        )
        return found is not None

    def _version_info(self, entity: Any) -> ModelVersionInfo:
        run_id = entity.run_id or ""
        if not run_id and getattr(entity, "model_id", None):
            run_id = self._logged_model(entity.model_id).source_run_id or ""
        return ModelVersionInfo(
            name=entity.name,
            version=str(entity.version),
            run_id=run_id,
            source=entity.source or "",
            tags=dict(entity.tags or {}),
            aliases=tuple(entity.aliases or ()),
        )
