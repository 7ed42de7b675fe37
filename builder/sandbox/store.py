"""SQLite state of the sandbox: accounts, API keys, model slots, uploads, pickles, triggers, logs.

One file (``<dir>/sandbox.sqlite``) in WAL mode, so ``nmr sandbox account create`` can add an
account while a server holds the same directory open. Secrets are stored only as sha256.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import string
import threading
import time
import uuid
from pathlib import Path

from builder.errors import NmrError
from builder.runtimes import get as get_runtime
from builder.runtimes import known_tags

# Numerai's data versions offered to pickles (docs/design/numerai.md §3); v5.2 is what numerai-predict's
# HEAD defaults to, so the sandbox marks it default.
DATA_VERSIONS = ("v5.0", "v5.1", "v5.2", "v5.3")
DEFAULT_DATA_VERSION = "v5.2"

# Validation status strings as seen in third-party logs of the live API (docs/design/numerai.md §5);
# the full enum is unconfirmed.
PENDING, VALIDATING, VALIDATED, FAILED = "pending", "validating", "validated", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, username TEXT UNIQUE NOT NULL, inserted_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens (
  public_id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, account_id TEXT NOT NULL,
  name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT UNIQUE NOT NULL,
  tournament INTEGER NOT NULL, assigned_pickle_id TEXT, inserted_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS submission_webhooks (
  model_id TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS upload_auths (
  token TEXT PRIMARY KEY, account_id TEXT NOT NULL, filename TEXT NOT NULL, model_id TEXT,
  expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (
  account_id TEXT NOT NULL, filename TEXT NOT NULL, size INTEGER NOT NULL,
  sha256 TEXT NOT NULL, uploaded_at REAL NOT NULL, PRIMARY KEY (account_id, filename));
CREATE TABLE IF NOT EXISTS puts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT NULL, filename TEXT NOT NULL,
  sha256 TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pickles (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, model_id TEXT, filename TEXT NOT NULL,
  tournament INTEGER NOT NULL, data_version_id TEXT NOT NULL, docker_image_id TEXT NOT NULL,
  validation_status TEXT NOT NULL, label TEXT, sha256 TEXT NOT NULL,
  inserted_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS triggers (
  id TEXT PRIMARY KEY, pickle_id TEXT NOT NULL, model_id TEXT, type TEXT NOT NULL,
  status TEXT NOT NULL, inserted_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trigger_statuses (
  id INTEGER PRIMARY KEY AUTOINCREMENT, trigger_id TEXT NOT NULL, status TEXT NOT NULL,
  description TEXT, inserted_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, trigger_id TEXT NOT NULL, timestamp INTEGER NOT NULL,
  message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS data_versions (
  id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, is_default INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS docker_images (
  id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, image TEXT NOT NULL, tag TEXT NOT NULL,
  is_default INTEGER NOT NULL, inserted_at REAL NOT NULL);
"""


class Store:
    """Thread-safe access to the sandbox database under ``directory``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.files_dir = self.directory / "uploads"
        self.files_dir.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.directory / "sandbox.sqlite",
            check_same_thread=False,
            isolation_level=None,
            timeout=30,
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._seed_catalog()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- accounts and keys -------------------------------------------------------------

    def create_account(self, username: str | None = None) -> tuple[str, str, str]:
        """Create an account with one API key; returns (username, public_id, secret_key)."""
        username = username or f"sandbox_{secrets.token_hex(4)}"
        public_id = "".join(secrets.choice(_UPPER) for _ in range(32))
        secret_key = "".join(secrets.choice(_UPPER) for _ in range(64))
        account_id = str(uuid.uuid4())
        if self.one("SELECT 1 FROM accounts WHERE username = ?", (username,)):
            raise NmrError(f"sandbox account {username!r} already exists")
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO accounts VALUES (?, ?, ?)", (account_id, username, time.time())
            )
            self._db.execute(
                "INSERT INTO api_tokens VALUES (?, ?, ?, ?)",
                (public_id, _sha(secret_key.encode()), account_id, "nmr-sandbox"),
            )
        return username, public_id, secret_key

    def authenticate(self, public_id: str, secret_key: str) -> sqlite3.Row | None:
        row = self.one(
            "SELECT a.*, t.public_id, t.name AS token_name, t.secret_sha256 FROM api_tokens t"
            " JOIN accounts a ON a.id = t.account_id WHERE t.public_id = ?",
            (public_id,),
        )
        if row is None or not secrets.compare_digest(
            row["secret_sha256"], _sha(secret_key.encode())
        ):
            return None
        return row

    # --- generic helpers ---------------------------------------------------------------

    def one(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self._lock:
            self._db.execute(sql, params)

    # --- catalog -----------------------------------------------------------------------

    def data_versions(self) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM data_versions ORDER BY name")

    def docker_images(self) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM docker_images ORDER BY name")

    def add_data_version(self, name: str) -> None:
        """Offer another data version (the embedded sandbox adds the project's one)."""
        self.execute(
            "INSERT OR IGNORE INTO data_versions VALUES (?, ?, 0)", (str(uuid.uuid4()), name)
        )

    # --- uploads and pickles -----------------------------------------------------------

    def record_file(self, account_id: str, filename: str, data: bytes) -> None:
        path = self.file_path(account_id, filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        digest = _sha(data)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                (account_id, filename, len(data), digest, now),
            )
            self._db.execute(
                "INSERT INTO puts (account_id, filename, sha256, at) VALUES (?, ?, ?, ?)",
                (account_id, filename, digest, now),
            )

    def file_path(self, account_id: str, filename: str) -> Path:
        return self.files_dir / account_id / filename

    def add_status(self, trigger_id: str, status: str, description: str | None = None) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO trigger_statuses (trigger_id, status, description, inserted_at)"
                " VALUES (?, ?, ?, ?)",
                (trigger_id, status, description, now),
            )
            self._db.execute(
                "UPDATE triggers SET status = ?, updated_at = ? WHERE id = ?",
                (status, now, trigger_id),
            )

    def add_logs(self, trigger_id: str, text: str) -> None:
        now = int(time.time())
        with self._lock:
            self._db.executemany(
                "INSERT INTO logs (trigger_id, timestamp, message) VALUES (?, ?, ?)",
                [(trigger_id, now, line) for line in text.splitlines()],
            )

    def _seed_catalog(self) -> None:
        if self._db.execute("SELECT COUNT(*) FROM data_versions").fetchone()[0] == 0:
            for name in DATA_VERSIONS:
                self._db.execute(
                    "INSERT INTO data_versions VALUES (?, ?, ?)",
                    (str(uuid.uuid4()), name, int(name == DEFAULT_DATA_VERSION)),
                )
        # One docker image per runtime in nmr's catalog, named as Numerai names them
        # ("Python 3.12", docs/design/numerai.md §4.2); image and tag split the runtime tag.
        for tag in known_tags():
            runtime = get_runtime(tag)
            image, _, image_tag = tag.partition(":")
            self._db.execute(
                "INSERT OR IGNORE INTO docker_images VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(uuid.uuid4()),
                    f"Python {runtime.python}",
                    image,
                    image_tag,
                    int(runtime.default),
                    time.time(),
                ),
            )


_UPPER = string.ascii_uppercase + string.digits


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
