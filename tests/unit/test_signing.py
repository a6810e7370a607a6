"""Signed versions (signing/, issue 38), over the fakes: a version registered through the
services is signed; a tampered file, and a tampered file whose recorded sha256 was changed to
match, are refused at load by the signature; rotation keeps versions of the previous key
loading while it is trusted; a bundle signed by a key the importing side does not trust is
refused; `models verify`, the admin route and `doctor` say what they found."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from mlgate.bootstrap import Services, bootstrap
from mlgate.cli.main import app
from mlgate.errors import InvalidInput, SignatureError
from mlgate.registry.service import resolve_version
from mlgate.settings import Settings
from mlgate.signing import envelope
from mlgate.signing.keys import SigningKey, hash_for, new_private_key, public_pem
from tests.fakes import FixedClock, InMemoryArtifactStore, InMemoryDatabase, in_memory_uow_factory
from tests.unit.test_batch_rules import NOW, Trained, train_churn


@pytest.fixture(scope="module")
def trained() -> Trained:
    return train_churn()  # churn v1, registered without a signature (as before signing)


class Home:
    """One mlgate over the fakes: its own database, files and key."""

    def __init__(self, tmp: Path, db: InMemoryDatabase, files: dict[str, bytes]) -> None:
        self.tmp, self.db, self.files = tmp, db, files
        self.made: list[Services] = []

    def services(self, **env: str) -> Services:
        artifacts = InMemoryArtifactStore()
        artifacts.files = self.files  # shared: what one writes, the next reads
        made = bootstrap(
            Settings.from_env({"MLGATE_HOME": str(self.tmp), **env}),
            unit_of_work=in_memory_uow_factory(self.db),
            artifacts=artifacts,
            clock=FixedClock(NOW),
        )
        self.made.append(made)
        return made


@pytest.fixture
def home(trained: Trained, tmp_path: Path) -> Iterator[Home]:
    db, files, _ = trained
    made = Home(tmp_path / "home", copy.deepcopy(db), dict(files))
    yield made
    for services in made.made:
        services.close()


def key_file(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_bytes(new_private_key())
    return path


def test_a_version_signed_by_the_server_verifies_and_loads(home: Home) -> None:
    s = home.services()
    assert [(x.model_name, x.number) for x in s.signing.sign("churn", 1, actor="cli:ops")] == [
        ("churn", 1)
    ]
    found = s.signing.verify("churn", 1)
    assert found.state == "verified" and found.key_id == s.signing.key.key_id
    assert (found.signed_by, found.signed_at) == ("cli:ops", NOW)
    version = resolve_version(s.uow(), "churn", 1)
    assert found.files == {
        "model": version.artifact.sha256,
        "snapshot.parquet": version.report["attachments"]["snapshot.parquet"]["sha256"],  # type: ignore[index]
    }
    assert s.predictors.get(version).version == version
    assert (home.tmp / "signing.key").stat().st_mode & 0o077 == 0  # made once, owner only


def test_the_bundle_is_the_model_signing_layout_and_verifies_with_plain_cryptography(
    home: Home,
) -> None:
    s = home.services()
    (signature,) = s.signing.sign("churn", 1, actor="t")
    bundle = json.loads(signature.bundle)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == s.signing.key.key_id
    dsse = bundle["dsseEnvelope"]
    payload = base64.b64decode(dsse["payload"])
    public = s.signing.key.public
    public.verify(  # DSSE v1: the signature is over PAE(type, payload), raises if it is not
        base64.b64decode(dsse["signatures"][0]["sig"]),
        b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload),
        ec.ECDSA(hash_for(public)),
    )
    statement = json.loads(payload)
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert statement["subject"][0]["name"] == "churn@v1"
    assert [r["name"] for r in statement["predicate"]["resources"]] == ["model", "snapshot.parquet"]


def test_a_file_changed_on_disk_is_refused_at_load_and_shown_by_doctor(home: Home) -> None:
    s = home.services()
    s.signing.sign(None, None, actor="t")
    version = resolve_version(s.uow(), "churn", 1)
    home.files[version.artifact.key] += b"\0"
    with pytest.raises(SignatureError, match="bytes do not match the signed sha256"):
        s.predictors.get(version)
    doctor = CliRunner().invoke(app, ["doctor"], obj=s)
    assert doctor.exit_code == 1
    assert "churn@v1: its signature does not match the files" in " ".join(doctor.output.split())


def test_a_changed_file_with_its_database_sha256_changed_to_match_is_still_refused(
    home: Home,
) -> None:
    s = home.services()
    s.signing.sign("churn", 1, actor="t")
    version = resolve_version(s.uow(), "churn", 1)
    tampered = home.files[version.artifact.key] + b"\0"
    home.files[version.artifact.key] = tampered
    from mlgate.registry.formats import sha256_of

    forged = replace(version, artifact=replace(version.artifact, sha256=sha256_of(tampered)))
    home.db.versions[("churn", 1)] = forged
    with pytest.raises(SignatureError, match="model does not match its signed sha256"):
        s.predictors.get(resolve_version(s.uow(), "churn", 1))
    assert s.signing.verify("churn", 1).state == "mismatch"


def test_rotation_keeps_the_previous_keys_versions_while_it_is_trusted(
    home: Home, tmp_path: Path
) -> None:
    old, new = key_file(tmp_path, "old.key"), key_file(tmp_path, "new.key")
    home.services(MLGATE_SIGNING_KEY=str(old)).signing.sign("churn", 1, actor="t")
    old_public = tmp_path / "old.pub"
    old_public.write_bytes(public_pem(SigningKey.from_pem(old.read_bytes(), where="").public))

    rotated = home.services(MLGATE_SIGNING_KEY=str(new), MLGATE_TRUSTED_KEYS=str(old_public))
    version = resolve_version(rotated.uow(), "churn", 1)
    assert rotated.predictors.get(version).version == version
    assert rotated.signing.verify("churn", 1).key_id != rotated.signing.key.key_id

    dropped = home.services(MLGATE_SIGNING_KEY=str(new))
    with pytest.raises(SignatureError, match="does not trust"):
        dropped.predictors.get(version)
    rotated.signing.sign(None, None, actor="t", again=True)  # re-signed with the new key
    assert dropped.signing.verify("churn", 1).key_id == dropped.signing.key.key_id
    assert home.services(MLGATE_SIGNING_KEY=str(new)).predictors.get(version).version == version


def test_an_unsigned_version_loads_with_a_warning_unless_signatures_are_required(
    home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    version = resolve_version(home.services().uow(), "churn", 1)
    assert home.services().predictors.get(version).version == version
    assert "churn@v1 is unsigned" in caplog.text
    with pytest.raises(SignatureError, match="unsigned and MLGATE_REQUIRE_SIGNATURES"):
        home.services(MLGATE_REQUIRE_SIGNATURES="true").predictors.get(version)


def test_a_bundle_signed_by_a_key_the_importer_does_not_trust_is_refused(
    home: Home, tmp_path: Path
) -> None:
    exporter = home.services()
    exporter.signing.sign("churn", 1, actor="t")
    bundle = exporter.registry.export_bundle("churn", 1, with_snapshot=False)
    importer = Home(tmp_path / "other", InMemoryDatabase(), {}).services()
    with pytest.raises(InvalidInput, match="does not trust; pass the exporter's public key"):
        importer.registry.import_bundle(bundle, model_name="churn")
    assert importer.registry.models() == []  # nothing written

    theirs = public_pem(exporter.signing.key.public)
    version = importer.registry.import_bundle(bundle, model_name="churn", trust_keys=[theirs])
    assert version.report["imported_from"]["signed_by"] == exporter.signing.key.key_id  # type: ignore[index]
    found = importer.signing.verify("churn", 1)  # signed again by the importing server
    assert found.state == "verified" and found.key_id == importer.signing.key.key_id


def test_models_verify_and_the_admin_route_say_who_signed_what_and_when(home: Home) -> None:
    s = home.services()
    runner = CliRunner()
    unsigned = runner.invoke(app, ["models", "verify", "churn@1"], obj=s)
    assert unsigned.exit_code == 1 and "unsigned" in unsigned.output
    signed = runner.invoke(app, ["models", "sign", "--all"], obj=s)
    assert signed.exit_code == 0 and "1 version(s) signed" in signed.output
    # Found in review: signing a signed version again said "0 version(s) signed" and no more.
    kept = runner.invoke(app, ["models", "sign", "churn@1"], obj=s)
    assert kept.exit_code == 0 and "0 version(s) signed" in kept.output
    assert "--again re-signs" in kept.output
    shown = runner.invoke(app, ["models", "verify", "churn@1"], obj=s)
    assert shown.exit_code == 0, shown.output
    assert f"verified churn@v1 signed by key {s.signing.key.key_id}" in shown.output
    assert "on 2026-11-27T12:00:00+00:00" in shown.output and "model  sha256" in shown.output


def test_a_tampered_signature_does_not_verify(home: Home) -> None:
    s = home.services()
    (signature,) = s.signing.sign("churn", 1, actor="t")
    bundle = json.loads(signature.bundle)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][0]["name"] = "churn@v2"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(envelope.Invalid, match="does not verify"):
        envelope.open_bundle(json.dumps(bundle), s.signing.keyring)


def test_a_version_is_signed_as_it_is_registered(home: Home) -> None:
    from mlgate.sources import demo
    from mlgate.training.service import TrainSpec, train_model
    from tests.fakes import InMemorySource

    s = home.services()
    source = InMemorySource("crm", demo.churn_frame(n_rows=200), demo.TABLE)
    spec = TrainSpec("churn", "crm", demo.TARGET, "logistic_regression", table=demo.TABLE,
                     drop=(demo.ID_COLUMN,), report=False, actor="cli:ana")  # fmt: skip
    version = train_model(
        s.uow(), s.artifacts, lambda config: source, spec, now=s.clock, sign=s.signing.sign_new
    ).version  # as `mlgate train` and jobs do
    found = s.signing.verify("churn", version.number)
    assert (found.state, found.signed_by, found.key_id) == (
        "verified",
        "cli:ana",
        s.signing.key.key_id,
    )


def test_the_admin_route_says_who_signed_what(home: Home) -> None:
    from starlette.testclient import TestClient

    from mlgate.access.accounts import create_user
    from mlgate.api.app import create_app
    from tests.secrets_watch import remember

    s = home.services()
    s.signing.sign("churn", 1, actor="cli:ops")
    password = remember("admin pass phrase for the signing test")
    create_user(s.uow(), by=None, name="boss", password=password, is_admin=True, now=NOW)
    with TestClient(create_app(s)) as client:
        token = client.post("/v1/auth/login", json={"name": "boss", "password": password})
        boss = {"Authorization": f"Bearer {token.json()['token']}"}
        shown = client.get("/v1/models/churn/versions/1/signature", headers=boss)
        assert shown.status_code == 200, shown.text
        assert shown.json()["verified"] is True
        assert shown.json()["key_id"] == s.signing.key.key_id
        assert shown.json()["signed_by"] == "cli:ops"
        assert client.get("/v1/models/churn/versions/1/signature").status_code == 401


def test_exports_load_a_version_through_the_same_signature_check_as_serving(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONNX and SQL exports build the version's model: a signature this server does not trust
    refuses them as it refuses serving, before anything is built or converted."""
    from mlgate.exports import convert
    from mlgate.exports.sql import service as sql_service

    def built(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted before the signature was checked")

    monkeypatch.setattr(convert, "convert", built)
    monkeypatch.setattr(sql_service, "compile_template", built)
    signer = key_file(tmp_path, "elsewhere.key")
    home.services(MLGATE_SIGNING_KEY=str(signer)).signing.sign("churn", 1, actor="t")
    here = home.services()  # its own key; the signer's is not trusted
    with pytest.raises(SignatureError, match="does not trust"):
        here.registry.export_onnx("churn", 1)
    with pytest.raises(SignatureError, match="does not trust"):
        here.registry.export_sql("churn", 1, dialect="sqlite")
