"""The epoch key in a PKCS#11 token (SoftHSM2): compaction destroys the token object.

The test makes its own token in a temporary SoftHSM2 configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError, WrongMasterKeyError
from learnprivacy.records import Learner
from learnprivacy.store import Store
from learnprivacy.store._epochs import FileVault
from learnprivacy.store._pkcs11 import Pkcs11Vault
from tests.store_fixtures import MASTER_KEY, NOW, learner, records_for

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4711-test-pin"
ERASED = "learner-erased-Hs1"
KEPT = "learner-kept-Hs2"

pytest.importorskip("pkcs11")


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SoftHSM2 token; the library reads SOFTHSM2_CONF when first loaded."""
    if not Path(MODULE).exists() or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed")
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n",
        encoding="utf-8",
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", "lp-test"),
            *("--pin", PIN, "--so-pin", "so-" + PIN),
        ],
        check=True,
        capture_output=True,
    )
    yield "lp-test"
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def _objects(vault: Pkcs11Vault) -> list[bytes]:
    from pkcs11 import Attribute, ObjectClass

    with vault._session() as session:
        return [
            bytes(obj[Attribute.VALUE])
            for obj in session.get_objects({Attribute.CLASS: ObjectClass.DATA})
        ]


def test_an_hsm_vault_closes_old_key_copies_and_destroys_the_epoch_object(
    token: str, tmp_path: Path
) -> None:
    vault = Pkcs11Vault(MODULE, token=token, pin=PIN, label="store-a")
    assert PIN not in repr(vault)
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    keyring = Keyring.from_master_key(MASTER_KEY)
    with Store(url, keyring=keyring, vault=vault, clock=lambda: NOW) as store:
        store.add_all([learner(ERASED), *records_for(ERASED), learner(KEPT), *records_for(KEPT)])
        store.compact_keys(now=NOW)
        (first,) = _objects(vault)
        store.backup(str(tmp_path / "records-before.db"))
        store._key_db.backup(str(tmp_path / "keys-before.db"))
        store.erase_subject(ERASED, now=NOW)
        report = store.compact_keys(now=NOW)
        assert report["epoch"] == 2
        assert store.key_epoch_status()["vault"] == "pkcs11:lp-test/store-a"
    # The object that held the previous epoch key is gone from the token.
    objects = _objects(vault)
    assert len(objects) == 1
    assert first not in objects
    assert not (tmp_path / "lms.keys.vault").exists()
    shutil.copyfile(tmp_path / "records-before.db", tmp_path / "r.db")
    shutil.copyfile(tmp_path / "keys-before.db", tmp_path / "k.db")

    def attack() -> Learner | None:
        with Store(
            f"sqlite:///{tmp_path / 'r.db'}",
            keyring=Keyring.from_master_key(MASTER_KEY),
            keys=f"sqlite:///{tmp_path / 'k.db'}",
            vault=vault,
        ) as old:
            return old.get(Learner, ERASED)

    # The old copy names an epoch the token no longer holds: refused at open...
    with pytest.raises(ConfigurationError, match="epoch"):
        attack()
    # ...and edited to name the current epoch, its wrapped keys still open nothing.
    state = vault.read()
    assert state is not None
    from learnprivacy.keys import KeyDatabase

    copy = KeyDatabase(f"sqlite:///{tmp_path / 'k.db'}")
    with copy, copy.epoch_transaction() as (connection, _current, _next):
        copy.set_epochs(connection, state["current"], "")
    with pytest.raises(WrongMasterKeyError):
        attack()
    with Store(url, keyring=Keyring.from_master_key(MASTER_KEY), vault=vault) as store:
        assert store.get(Learner, KEPT) == learner(KEPT)
        assert store.get(Learner, ERASED) is None


def test_an_hsm_vault_from_the_environment(token: str) -> None:
    env = {
        "LEARNPRIVACY_PKCS11_MODULE": MODULE,
        "LEARNPRIVACY_PKCS11_TOKEN": token,
        "LEARNPRIVACY_PKCS11_PIN": PIN,
    }
    vault = Pkcs11Vault.from_env(env, label="store-env")
    assert vault.read() is None
    with pytest.raises(ConfigurationError, match="LEARNPRIVACY_PKCS11_PIN"):
        Pkcs11Vault.from_env({k: v for k, v in env.items() if not k.endswith("PIN")})
    with pytest.raises(ConfigurationError, match="cannot open"):
        Pkcs11Vault(MODULE, token=token, pin="wrong-pin", label="x").read()


def test_the_master_key_kept_in_the_token_opens_the_store(token: str, tmp_path: Path) -> None:
    """The token keeps both the master key and the epoch keys: the store opens, writes,
    compacts and reopens with nothing but the token (module, label, PIN); no file in the
    store's folder holds the master key. It is written once, never overwritten."""
    vault = Pkcs11Vault(MODULE, token=token, pin=PIN, label="store-master")
    with pytest.raises(ConfigurationError, match="no master key"):
        Keyring.from_vault(vault)
    master = os.urandom(32)
    vault.write_master_key(master)
    with pytest.raises(ConfigurationError, match="never overwritten"):
        vault.write_master_key(os.urandom(32))
    with pytest.raises(ConfigurationError, match="32 bytes"):
        vault.write_master_key(b"short")
    keyring = Keyring.from_vault(vault)
    assert keyring.master_key_id == Keyring.from_master_key(master).master_key_id
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=keyring, vault=vault, clock=lambda: NOW) as store:
        store.add_all([learner(KEPT), *records_for(KEPT), learner(ERASED)])
        store.erase_subject(ERASED, now=NOW)
        store.compact_keys(now=NOW)
    # The epoch keys and the master key are separate objects; compaction left the master.
    env = {
        "LEARNPRIVACY_PKCS11_MODULE": MODULE,
        "LEARNPRIVACY_PKCS11_TOKEN": token,
        "LEARNPRIVACY_PKCS11_PIN": PIN,
    }
    again = Pkcs11Vault.from_env(env, label="store-master")
    with Store(url, keyring=Keyring.from_vault(again), vault=again) as store:
        assert store.get(Learner, KEPT) == learner(KEPT)
        assert store.get(Learner, ERASED) is None
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert master not in path.read_bytes(), path.name
    # A wrong PIN opens nothing, and says so without key material.
    with pytest.raises(ConfigurationError, match="cannot open") as info:
        Keyring.from_vault(Pkcs11Vault(MODULE, token=token, pin="wrong-pin", label="store-master"))
    assert master.hex() not in str(info.value)
    # A store whose files are copied elsewhere does not open without the token's keys.
    with pytest.raises(ConfigurationError):
        Keyring.from_vault(FileVault(tmp_path / "nothing.vault"))
