"""SQLAlchemy implementations of the repository protocols, all on one open connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from mlgate.columns import Column
from mlgate.db.tables import (
    alias_events,
    aliases,
    comparisons,
    jobs,
    model_versions,
    models,
    pending_writes,
    sources,
    version_signatures,
)
from mlgate.errors import AlreadyExists, NotFound
from mlgate.jobs.model import FINISHED, Job
from mlgate.registry.model import AliasEvent, Artifact, Lineage, ModelVersion, RegisteredModel
from mlgate.sources.model import SourceConfig
from mlgate.sources.sealing import SEALED, Sealer


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    out = _utc(value)
    assert out is not None
    return out


class SqlSourceRepository:
    """URLs are sealed (encrypted) on the way in and unsealed on the way out."""

    def __init__(self, conn: sa.Connection, sealer: Sealer) -> None:
        self._conn = conn
        self._sealer = sealer

    def add(self, source: SourceConfig) -> None:
        if self.get(source.name) is not None:
            raise AlreadyExists(f"a source named {source.name!r} exists; remove it first")
        self._conn.execute(
            sources.insert().values(
                name=source.name,
                kind=source.kind,
                url=self._sealer.seal(source.url),
                created_at=source.created_at,
            )
        )

    def get(self, name: str) -> SourceConfig | None:
        row = self._conn.execute(sources.select().where(sources.c.name == name)).first()
        return None if row is None else self._load(row)

    def all(self) -> list[SourceConfig]:
        rows = self._conn.execute(sources.select().order_by(sources.c.name))
        return [self._load(row) for row in rows]

    def remove(self, name: str) -> None:
        result = self._conn.execute(sources.delete().where(sources.c.name == name))
        if result.rowcount == 0:
            raise NotFound(f"no source named {name!r}")

    def seal_legacy(self) -> int:
        """Seal URLs stored before sealing existed; returns how many there were."""
        rows = self._conn.execute(
            sa.select(sources.c.id, sources.c.url).where(~sources.c.url.startswith(SEALED))
        ).all()
        for row in rows:
            self._conn.execute(
                sources.update()
                .where(sources.c.id == row.id)
                .values(url=self._sealer.seal(row.url))
            )
        return len(rows)

    def _load(self, row: sa.Row[Any]) -> SourceConfig:
        url = self._sealer.unseal(row.url, name=row.name)
        return SourceConfig(row.name, url, row.kind, _aware(row.created_at))


class SqlModelRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> RegisteredModel | None:
        row = self._conn.execute(models.select().where(models.c.name == name)).first()
        return None if row is None else self._load_model(row)

    def add(self, model: RegisteredModel) -> None:
        if self.get(model.name) is not None:
            raise AlreadyExists(f"a model named {model.name!r} exists")
        self._conn.execute(
            models.insert().values(
                name=model.name,
                task=model.task,
                target=model.target,
                latest_version=model.latest_version,
                created_at=model.created_at,
            )
        )

    def all(self) -> list[RegisteredModel]:
        rows = self._conn.execute(models.select().order_by(models.c.name))
        return [self._load_model(row) for row in rows]

    def add_version(self, version: ModelVersion) -> None:
        model_id = self._model_id(version.model_name)
        self._conn.execute(
            model_versions.insert().values(
                model_id=model_id,
                number=version.number,
                algorithm=version.algorithm,
                params=version.params,
                metrics=version.metrics,
                columns=[c.to_json() for c in version.columns],
                classes=None if version.classes is None else list(version.classes),
                lineage=version.lineage.to_json(),
                artifact_key=version.artifact.key,
                artifact_format=version.artifact.format,
                artifact_sha256=version.artifact.sha256,
                artifact_size=version.artifact.size_bytes,
                library_versions=version.library_versions,
                fit_seconds=version.fit_seconds,
                created_at=version.created_at,
                report=version.report,
            )
        )
        self._conn.execute(
            models.update()
            .where(models.c.id == model_id, models.c.latest_version < version.number)
            .values(latest_version=version.number)
        )

    def get_version(self, name: str, number: int) -> ModelVersion | None:
        row = self._conn.execute(
            self._versions_query().where(models.c.name == name, model_versions.c.number == number)
        ).first()
        return None if row is None else self._load_version(row)

    def versions(self, name: str) -> list[ModelVersion]:
        rows = self._conn.execute(
            self._versions_query().where(models.c.name == name).order_by(model_versions.c.number)
        )
        return [self._load_version(row) for row in rows]

    def archive(self, name: str, number: int, at: datetime | None) -> None:
        """Archive version `number` (or restore it, with at=None)."""
        self._conn.execute(
            model_versions.update()
            .where(
                model_versions.c.model_id == self._model_id(name), model_versions.c.number == number
            )
            .values(archived_at=at)
        )

    def schedule_retirement(self, name: str, number: int, at: datetime | None) -> None:
        self._conn.execute(
            model_versions.update()
            .where(
                model_versions.c.model_id == self._model_id(name), model_versions.c.number == number
            )
            .values(retire_at=at)
        )

    def aliases(self, name: str) -> dict[str, int]:
        rows = self._conn.execute(
            sa.select(aliases.c.name, aliases.c.version)
            .where(aliases.c.model_id == self._model_id(name))
            .order_by(aliases.c.name)
        )
        return {row.name: row.version for row in rows}

    def all_aliases(self) -> dict[tuple[str, str], int]:
        """(model, alias) -> version, for every model: one query, for watchers."""
        rows = self._conn.execute(
            sa.select(models.c.name.label("model"), aliases.c.name, aliases.c.version).join(
                models, models.c.id == aliases.c.model_id
            )
        )
        return {(row.model, row.name): row.version for row in rows}

    def move_alias(self, event: AliasEvent) -> None:
        """Point the alias at event.to_version and append the event to its history."""
        model_id = self._model_id(event.model_name)
        values = {"version": event.to_version, "updated_at": event.at}
        updated = self._conn.execute(
            aliases.update()
            .where(aliases.c.model_id == model_id, aliases.c.name == event.alias)
            .values(**values)
        )
        if updated.rowcount == 0:
            self._conn.execute(
                aliases.insert().values(model_id=model_id, name=event.alias, **values)
            )
        self._conn.execute(
            alias_events.insert().values(
                model_id=model_id,
                alias=event.alias,
                kind=event.kind,
                from_version=event.from_version,
                to_version=event.to_version,
                actor=event.actor,
                reason=event.reason,
                at=event.at,
            )
        )

    def add_comparison(
        self, name: str, a: int, b: int, result: dict[str, Any], at: datetime
    ) -> None:
        self._conn.execute(
            comparisons.insert().values(
                model_id=self._model_id(name), a=a, b=b, result=result, at=at
            )
        )

    def comparisons(self, name: str) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            sa.select(comparisons.c.result)
            .where(comparisons.c.model_id == self._model_id(name))
            .order_by(comparisons.c.id)
        )
        return [dict(row.result) for row in rows]

    def alias_history(self, name: str, alias: str) -> list[AliasEvent]:
        """Every move of `alias`, oldest first."""
        rows = self._conn.execute(
            alias_events.select()
            .where(alias_events.c.model_id == self._model_id(name), alias_events.c.alias == alias)
            .order_by(alias_events.c.id)
        )
        return [
            AliasEvent(
                model_name=name,
                alias=row.alias,
                kind=row.kind,
                from_version=row.from_version,
                to_version=row.to_version,
                actor=row.actor,
                reason=row.reason,
                at=_aware(row.at),
            )
            for row in rows
        ]

    def annotate(
        self, name: str, number: int | None, *, description: str | None, tags: dict[str, str]
    ) -> None:
        """Set the description and merge tags (an empty value removes a tag) of the model, or
        of version `number`."""
        if number is None:
            table, where = models, models.c.id == self._model_id(name)
        else:
            table = model_versions
            where = sa.and_(
                model_versions.c.model_id == self._model_id(name),
                model_versions.c.number == number,
            )
        row = self._conn.execute(sa.select(table.c.tags).where(where)).first()
        if row is None:
            raise NotFound(f"model {name!r} has no version {number}")
        merged = {**(row.tags or {}), **tags}
        values: dict[str, Any] = {"tags": {k: v for k, v in merged.items() if v != ""}}
        if description is not None:
            values["description"] = description
        self._conn.execute(table.update().where(where).values(**values))

    def add_pending(self, keys: list[str], owner: str, at: datetime) -> None:
        self._conn.execute(
            pending_writes.insert(), [{"key": k, "owner": owner, "created_at": at} for k in keys]
        )

    def remove_pending(self, keys: list[str]) -> None:
        self._conn.execute(pending_writes.delete().where(pending_writes.c.key.in_(keys)))

    def pending(self) -> list[tuple[str, str, datetime]]:
        rows = self._conn.execute(sa.select(pending_writes))
        return [(row.key, row.owner, _aware(row.created_at)) for row in rows]

    def delete_version(self, name: str, number: int) -> None:
        where = (
            model_versions.c.model_id == self._model_id(name),
            model_versions.c.number == number,
        )
        # Its signature first: SQLite enforces no ON DELETE CASCADE, and may give the row's id
        # to the next version.
        ids = sa.select(model_versions.c.id).where(*where).scalar_subquery()
        signed = version_signatures.c.version_id == ids
        self._conn.execute(version_signatures.delete().where(signed))
        self._conn.execute(model_versions.delete().where(*where))

    def _model_id(self, name: str) -> int:
        model_id = self._conn.execute(sa.select(models.c.id).where(models.c.name == name)).scalar()
        if model_id is None:
            raise NotFound(f"no model named {name!r}")
        return int(model_id)

    @staticmethod
    def _versions_query() -> sa.Select[Any]:
        return sa.select(
            model_versions, models.c.name.label("model_name"), models.c.task, models.c.target
        ).join(models, models.c.id == model_versions.c.model_id)

    @staticmethod
    def _load_model(row: sa.Row[Any]) -> RegisteredModel:
        return RegisteredModel(
            name=row.name,
            task=row.task,
            target=row.target,
            created_at=_aware(row.created_at),
            latest_version=row.latest_version,
            description=row.description or "",
            tags=dict(row.tags or {}),
        )

    @staticmethod
    def _load_version(row: sa.Row[Any]) -> ModelVersion:
        return ModelVersion(
            model_name=row.model_name,
            number=row.number,
            task=row.task,
            algorithm=row.algorithm,
            target=row.target,
            params=dict(row.params),
            metrics={k: float(v) for k, v in row.metrics.items()},
            columns=tuple(Column.from_json(c) for c in row.columns),
            classes=None if row.classes is None else tuple(row.classes),
            lineage=Lineage.from_json(row.lineage),
            artifact=Artifact(
                key=row.artifact_key,
                format=row.artifact_format,
                sha256=row.artifact_sha256,
                size_bytes=row.artifact_size,
            ),
            library_versions=dict(row.library_versions),
            created_at=_aware(row.created_at),
            fit_seconds=row.fit_seconds,
            report=None if row.report is None else dict(row.report),
            archived_at=_utc(row.archived_at),
            retire_at=_utc(row.retire_at),
            description=row.description or "",
            tags=dict(row.tags or {}),
        )


class SqlJobRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, job: Job) -> None:
        self._conn.execute(
            jobs.insert().values(
                id=job.id, cancel_requested=job.cancel_requested, **self._values(job)
            )
        )

    def get(self, job_id: str) -> Job | None:
        row = self._conn.execute(jobs.select().where(jobs.c.id == job_id)).first()
        return None if row is None else self._load(row)

    def save(self, job: Job) -> None:
        self._conn.execute(jobs.update().where(jobs.c.id == job.id).values(**self._values(job)))

    def unfinished(self) -> list[Job]:
        rows = self._conn.execute(jobs.select().where(jobs.c.state.not_in(FINISHED)))
        return [self._load(row) for row in rows]

    def finished_before(self, kind: str, before: datetime) -> list[Job]:
        rows = self._conn.execute(
            jobs.select().where(
                jobs.c.kind == kind, jobs.c.state.in_(FINISHED), jobs.c.finished_at < before
            )
        )
        return [self._load(row) for row in rows]

    def request_cancel(self, job_id: str) -> None:
        # Its own statement: a runner saving the job's progress never overwrites the request.
        self._conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.state.not_in(FINISHED))
            .values(cancel_requested=True)
        )

    def beat(self, job_ids: list[str], at: datetime) -> None:
        if job_ids:
            self._conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(job_ids), jobs.c.state.not_in(FINISHED))
                .values(heartbeat_at=at)
            )

    @staticmethod
    def _values(job: Job) -> dict[str, Any]:
        return {
            "kind": job.kind,
            "state": job.state,
            "spec": job.spec,
            "stage": job.stage,
            "progress": job.progress,
            "log": list(job.log),
            "result": job.result,
            "error": job.error,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "owner": job.owner,
            "heartbeat_at": job.heartbeat_at,
        }

    @staticmethod
    def _load(row: sa.Row[Any]) -> Job:
        return Job(
            id=row.id,
            kind=row.kind,
            state=row.state,
            spec=dict(row.spec),
            created_at=_aware(row.created_at),
            stage=row.stage,
            progress=row.progress,
            log=tuple(row.log),
            result=dict(row.result),
            error=row.error,
            cancel_requested=bool(row.cancel_requested),
            started_at=_utc(row.started_at),
            finished_at=_utc(row.finished_at),
            owner=row.owner or "",
            heartbeat_at=_utc(row.heartbeat_at),
        )
