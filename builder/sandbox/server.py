"""A local Numerai API: GraphQL over HTTP, presigned-style uploads, a validation worker.

``SandboxServer(directory).start()`` serves on loopback in a thread (tests, ``nmr apply
--sandbox``); ``nmr sandbox serve`` runs the same server in the foreground. GraphQL documents are
parsed, validated and executed by graphql-core against ``schema.SDL``; resolvers read and write
the SQLite ``Store``. Errors come back as ``{"errors": [{"message": ...}]}`` with HTTP 200, which
is what numerapi turns into ``ValueError(message)`` (docs/design/numerai.md §4.1).

Faults for tests: ``inject_fault(target, kind, times)`` (or ``POST /_sandbox/faults``) makes the
next ``times`` requests for a GraphQL root field (or ``"upload"``) fail: ``http500`` answers 500,
``drop`` closes the connection, ``hang`` sleeps ``seconds`` first, ``lost_response`` executes
the request and then answers 500 (the change happened but the client never heard of it).
An optional ``match`` limits a fault to requests whose body contains that text (e.g. one slot's
name), so one slot of a concurrent apply can be made to fail deterministically.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from builder.errors import NmrError

try:
    import graphql
except ImportError:  # graphql-core is the sandbox extra, not a core dependency
    raise NmrError("the nmr sandbox needs graphql-core: pip install 'nmr[sandbox]'") from None

from builder.sandbox.datasets import URL_PREFIX, Datasets, byte_range, dataset_resolvers, etag
from builder.sandbox.schema import SDL
from builder.sandbox.store import PENDING, VALIDATED, Store
from builder.sandbox.worker import ValidationWorker, Validator, runner_validator

UPLOAD_URL_TTL_S = 600  # numerai-predict's presigned URLs live 600 s (docs/design/numerai.md §1.2)
FAULT_KINDS = ("http500", "drop", "hang", "lost_response")


class SandboxError(Exception):
    """A refusal reported to the client as a GraphQL error message."""


class SandboxServer:
    """The sandbox HTTP server bound to ``host:port`` (port 0: an ephemeral port)."""

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        validator: Validator | None = None,
        live_path: Path | None = None,
        benchmarks_path: Path | None = None,
        datasets_dir: Path | None = None,
    ):
        self.store = Store(Path(directory))
        self.datasets = Datasets(datasets_dir)
        self.worker = ValidationWorker(
            self.store, validator or runner_validator(live_path, benchmarks_path)
        )
        self.schema = graphql.build_schema(SDL)
        _bind_resolvers(self.schema)
        _bind_dataset_resolvers(self.schema, self.datasets)
        self._faults: list[dict] = []
        self._faults_lock = threading.Lock()
        self._http = ThreadingHTTPServer((host, port), _Handler)
        self._http.daemon_threads = True
        self._http.sandbox = self
        self._thread: threading.Thread | None = None
        # Only the first server on a directory resumes validations a killed server left
        # unfinished; a second one (e.g. `nmr status --sandbox` during an apply) must not run
        # them twice.
        self._resume_lock = _try_lock(self.store.directory / "worker.lock")
        if self._resume_lock is not None:
            self.worker.resume_unfinished()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        """Serve in a background thread; returns self."""
        # A short poll interval keeps stop() fast (serve_forever checks for shutdown per poll).
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="nmr-sandbox-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self.worker.stop()
        self.store.close()
        if self._resume_lock is not None:
            self._resume_lock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def create_account(self, username: str | None = None) -> tuple[str, str, str]:
        return self.store.create_account(username)

    def inject_fault(
        self,
        target: str,
        kind: str,
        times: int = 1,
        seconds: float = 5.0,
        match: str | None = None,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        with self._faults_lock:
            self._faults.append(
                {"target": target, "kind": kind, "times": times, "seconds": seconds}
                | ({"match": match} if match else {})
            )

    def clear_faults(self) -> None:
        with self._faults_lock:
            self._faults.clear()

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until no trigger is pending or running (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = self.store.one(
                "SELECT COUNT(*) FROM triggers WHERE status IN ('pending','running','validating')"
            )[0]
            if not busy:
                return
            time.sleep(0.05)
        raise TimeoutError("sandbox validation did not finish")

    def execute(self, body: dict, authorization: str | None, base_url: str) -> dict:
        """Run one GraphQL request; returns the response JSON."""
        query = body.get("query")
        if not isinstance(query, str):
            return {"errors": [{"message": "request body needs a 'query' string"}]}
        context = {
            "store": self.store,
            "worker": self.worker,
            "account": self._authenticate(authorization),
            "base_url": base_url,
        }
        result = graphql.graphql_sync(
            self.schema,
            query,
            variable_values=body.get("variables") or None,
            operation_name=body.get("operationName"),
            context_value=context,
        )
        response: dict = {"data": result.data}
        if result.errors:
            response["errors"] = [{"message": error.message} for error in result.errors]
        return response

    def take_fault(self, target: str, body: bytes = b"") -> dict | None:
        with self._faults_lock:
            for fault in self._faults:
                if "match" in fault and fault["match"].encode() not in body:
                    continue
                if fault["target"] == target and fault["times"] > 0:
                    fault["times"] -= 1
                    return dict(fault)
        return None

    def _authenticate(self, header: str | None):
        # Numerai's scheme: "Authorization: Token PUBLIC_ID$SECRET_KEY" (docs/design/numerai.md §4.1).
        if not header or not header.startswith("Token ") or "$" not in header:
            return None
        public_id, _, secret_key = header[len("Token ") :].partition("$")
        return self.store.authenticate(public_id.strip(), secret_key.strip())


# --- HTTP -------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "nmr-sandbox"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the sandbox logs nothing per request
        return

    @property
    def sandbox(self) -> SandboxServer:
        return self.server.sandbox

    def do_HEAD(self):
        if self.path.startswith(URL_PREFIX):
            self._send_dataset(head=True)
        else:
            self._send(405, b"", "text/plain")

    def do_GET(self):
        if self.path.startswith(URL_PREFIX):
            self._send_dataset(head=False)
        elif self.path.startswith("/_sandbox/health"):
            self._send_json(200, {"ok": True})
        elif self.path.startswith("/uploads/"):
            self._send_json(405, {"error": "uploads accept PUT only"})
        else:
            self._send_text(200, "nmr sandbox: POST GraphQL documents to / or /graphql\n")

    def do_POST(self):
        body = self._read_body()
        if self.path.startswith("/_sandbox/faults"):
            try:
                spec = json.loads(body or b"{}")
                self.sandbox.inject_fault(
                    spec["target"],
                    spec["kind"],
                    int(spec.get("times", 1)),
                    float(spec.get("seconds", 5.0)),
                    spec.get("match"),
                )
            except (ValueError, KeyError, TypeError) as error:
                self._send_json(400, {"error": str(error)})
                return
            self._send_json(200, {"ok": True})
            return
        if self.path.split("?")[0] not in ("/", "/graphql"):
            self._send_json(404, {"error": "not found"})
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._send_json(400, {"errors": [{"message": "request body is not JSON"}]})
            return
        fault = self.sandbox.take_fault(_root_field(request.get("query")), body)
        if fault and self._apply_fault_before(fault):
            return
        response = self.sandbox.execute(
            request, self.headers.get("Authorization"), self._base_url()
        )
        if fault and fault["kind"] == "lost_response":
            self._send_json(500, {"errors": [{"message": "internal server error"}]})
            return
        self._send_json(200, response)

    def do_PUT(self):
        match = re.fullmatch(r"/uploads/([A-Za-z0-9_-]+)(\?.*)?", self.path)
        body = self._read_body()
        if not match:
            self._send_json(404, {"error": "not found"})
            return
        fault = self.sandbox.take_fault("upload")
        if fault and self._apply_fault_before(fault):
            return
        store = self.sandbox.store
        auth = store.one("SELECT * FROM upload_auths WHERE token = ?", (match.group(1),))
        if auth is None or auth["expires_at"] < time.time():
            # S3 answers an expired or forged presigned URL with 403 AccessDenied.
            self._send_text(403, "AccessDenied: the upload URL is invalid or expired\n")
            return
        store.record_file(auth["account_id"], auth["filename"], body)
        if fault and fault["kind"] == "lost_response":
            self._send_text(500, "InternalError\n")
            return
        self._send_text(200, "")

    def _send_dataset(self, head: bool) -> None:
        """A dataset file, whole or the byte range asked for (numerapi resumes with Range)."""
        path = self.sandbox.datasets.file_for_url_path(self.path)
        if path is None:
            self._send_text(404, "NoSuchKey: no such dataset\n")
            return
        fault = None if head else self.sandbox.take_fault("dataset_download")
        if fault and self._apply_fault_before(fault):
            return
        size = path.stat().st_size
        try:
            span = byte_range(self.headers.get("Range"), size)
        except ValueError as error:
            self._send_text(416, f"InvalidRange: {error}\n")
            return
        start, end = span if span else (0, size - 1)
        try:
            self.send_response(206 if span else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(max(end - start + 1, 0)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag(path))
            if span:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if head:
                return
            with open(path, "rb") as handle:
                handle.seek(start)
                left = end - start + 1
                while left > 0:
                    block = handle.read(min(left, 1 << 20))
                    if not block:
                        break
                    self.wfile.write(block)
                    left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _apply_fault_before(self, fault: dict) -> bool:
        """Apply a fault that acts before the request runs; True when the response is done."""
        if fault["kind"] == "http500":
            self._send_json(500, {"errors": [{"message": "internal server error"}]})
            return True
        if fault["kind"] == "drop":
            self.close_connection = True
            self.connection.close()
            return True
        if fault["kind"] == "hang":
            time.sleep(fault["seconds"])
        return False

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def _send_json(self, code: int, payload) -> None:
        self._send(code, json.dumps(payload).encode(), "application/json")

    def _send_text(self, code: int, text: str) -> None:
        self._send(code, text.encode(), "text/plain; charset=utf-8")

    def _send(self, code: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True


def _try_lock(path: Path):
    """An exclusive lock on ``path`` held by the returned handle, or None when taken."""
    import fcntl

    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _root_field(query) -> str:
    """Name of the first root field of a document ("" when it cannot be parsed)."""
    if not isinstance(query, str):
        return ""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return ""
    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            for selection in definition.selection_set.selections:
                if isinstance(selection, graphql.FieldNode):
                    return selection.name.value
    return ""


# --- resolvers --------------------------------------------------------------------------------


def _bind_resolvers(schema: graphql.GraphQLSchema) -> None:
    resolvers = {
        "Query": {
            "account": _account,
            "apiTokenInfo": _api_token_info,
            "model": _model,
            "computePickleUploadAuth": _upload_auth,
            "computePickles": _compute_pickles,
            "computePickleDataVersions": _data_versions,
            "computePickleDockerImages": _docker_images,
            "triggerLogs": _trigger_logs,
            "diagnosticsTriggerLogs": _diagnostics_logs,
        },
        "Mutation": {
            "addModel": _add_model,
            "createComputePickleUpload": _create_pickle,
            "assignPickleToModel": _assign,
            "triggerComputePickleUpload": _trigger,
            "updatePickleLabel": _update_label,
            "setSubmissionWebhook": _set_webhook,
        },
    }
    for type_name, fields in resolvers.items():
        gql_type = schema.get_type(type_name)
        for field_name, resolver in fields.items():
            gql_type.fields[field_name].resolve = _authorized(resolver)


def _bind_dataset_resolvers(schema: graphql.GraphQLSchema, datasets: Datasets) -> None:
    # Numerai's dataset fields need no API key (numerapi sends none for them).
    query = schema.get_type("Query")
    for field_name, resolver in dataset_resolvers(datasets).items():
        query.fields[field_name].resolve = resolver


def _authorized(resolver):
    def resolve(root, info, **args):
        account = info.context["account"]
        if account is None:
            raise SandboxError(
                "You must be authenticated to perform this action: send "
                "'Authorization: Token PUBLIC_ID$SECRET_KEY'"
            )
        return resolver(info.context["store"], account, info.context, **args)

    return resolve


def _account(store, account, context):
    return {
        "id": account["id"],
        "username": account["username"],
        "email": None,
        "insertedAt": _time(account["inserted_at"]),
        "models": lambda info: [
            _model_dict(store, row)
            for row in store.all(
                "SELECT * FROM models WHERE account_id = ? ORDER BY inserted_at", (account["id"],)
            )
        ],
    }


def _api_token_info(store, account, context):
    return {
        "accountUsername": account["username"],
        "name": account["token_name"],
        "publicId": account["public_id"],
        "scopes": ["upload_submission", "read_submission_info", "read_user_info"],
    }


def _model(store, account, context, modelId=None):
    return _model_dict(store, _owned_model(store, account, modelId))


def _upload_auth(store, account, context, filename="model.pkl", modelId=None):
    if modelId:
        _owned_model(store, account, modelId)
    base = Path(filename).name
    if not base.endswith(".pkl"):
        raise SandboxError(f"filename must end with .pkl, got {base!r}")
    # Numerai stores uploads as "<stem>-<12 alphanumerics>.pkl" (observed server filenames,
    # docs/design/numerai.md §4.2); clients must register the returned name, not their own.
    suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    server_filename = f"{base[: -len('.pkl')]}-{suffix}.pkl"
    token = secrets.token_urlsafe(24)
    store.execute(
        "INSERT INTO upload_auths VALUES (?, ?, ?, ?, ?)",
        (token, account["id"], server_filename, modelId, time.time() + UPLOAD_URL_TTL_S),
    )
    return {
        "filename": server_filename,
        "url": f"{context['base_url']}/uploads/{token}",
        "accelerated": False,
        "countryCode": None,
    }


def _compute_pickles(store, account, context, id=None, modelId=None, unassigned=False):
    sql = "SELECT * FROM pickles WHERE account_id = ?"
    params: list = [account["id"]]
    if id:
        sql += " AND id = ?"
        params.append(id)
    if modelId:
        sql += " AND model_id = ?"
        params.append(modelId)
    rows = store.all(sql + " ORDER BY inserted_at", tuple(params))
    pickles = [_pickle_dict(store, row) for row in rows]
    if unassigned:
        pickles = [p for p in pickles if not p["assignedModelSlots"]]
    return pickles


def _data_versions(store, account, context, deprecated=False):
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "type": "live",
            "version": row["name"],
            "default": bool(row["is_default"]),
            "deprecated": False,
            "experimental": False,
        }
        for row in store.data_versions()
    ]


def _docker_images(store, account, context, deprecated=False):
    return [_image_dict(row) for row in store.docker_images()]


def _trigger_logs(store, account, context, triggerId):
    trigger = store.one(
        "SELECT t.id FROM triggers t JOIN pickles p ON p.id = t.pickle_id"
        " WHERE t.id = ? AND p.account_id = ?",
        (triggerId, account["id"]),
    )
    if trigger is None:
        raise SandboxError(f"trigger {triggerId} not found")
    return _logs(store, triggerId)


def _diagnostics_logs(store, account, context, pickleId):
    pickle = _owned_pickle(store, account, pickleId)
    trigger = store.one(
        "SELECT id FROM triggers WHERE pickle_id = ? AND type = 'validation'"
        " ORDER BY inserted_at DESC LIMIT 1",
        (pickle["id"],),
    )
    return _logs(store, trigger["id"]) if trigger else []


def _add_model(store, account, context, name, tournament):
    # nmr's rule for slot names, the same as numerai.yaml's schema (Numerai's exact rule is
    # unpublished): 1 to 32 lowercase letters, digits and underscores.
    if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
        raise SandboxError(
            f"invalid model name {name!r}: use 1-32 lowercase letters, digits or underscores"
        )
    if store.one("SELECT 1 FROM models WHERE name = ?", (name,)):
        raise SandboxError(f"model name {name!r} is already taken")
    model_id = str(uuid.uuid4())
    store.execute(
        "INSERT INTO models VALUES (?, ?, ?, ?, NULL, ?)",
        (model_id, account["id"], name, tournament, time.time()),
    )
    return _model_dict(store, store.one("SELECT * FROM models WHERE id = ?", (model_id,)))


def _create_pickle(
    store,
    account,
    context,
    filename,
    tournament,
    modelId=None,
    dataVersionId=None,
    dockerImageId=None,
    source=None,
):
    if tournament != 8:
        # Only Classic (tournament 8) supports pickles (docs/design/numerai.md §1.10).
        raise SandboxError(f"model uploads are only supported for tournament 8, got {tournament}")
    if modelId:
        _owned_model(store, account, modelId)
        if _webhook(store, modelId):
            # The documented rule: a slot with a compute webhook takes no pickle until the
            # webhook is disabled (Numerai's FAQ; the live error text is not known).
            raise SandboxError(
                "model uploads are not allowed for a model with a submission webhook "
                "(compute); disable the webhook first"
            )
    stored = store.one(
        "SELECT * FROM files WHERE account_id = ? AND filename = ?", (account["id"], filename)
    )
    if stored is None:
        raise SandboxError(f"no uploaded file named {filename!r}; PUT it to the upload URL first")
    data_version = _catalog_row(store, "data_versions", dataVersionId, "data version")
    image = _catalog_row(store, "docker_images", dockerImageId, "docker image")
    pickle_id = str(uuid.uuid4())
    now = time.time()
    store.execute(
        "INSERT INTO pickles VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
        (
            pickle_id,
            account["id"],
            modelId,
            filename,
            tournament,
            data_version["id"],
            image["id"],
            PENDING,
            stored["sha256"],
            now,
            now,
        ),
    )
    _new_trigger(store, context, pickle_id, modelId, "validation")
    return _pickle_dict(store, store.one("SELECT * FROM pickles WHERE id = ?", (pickle_id,)))


def _assign(store, account, context, modelId=None, pickleId=None):
    model = _owned_model(store, account, modelId)
    pickle = _owned_pickle(store, account, pickleId)
    if pickle["validation_status"] != VALIDATED:
        raise SandboxError(
            f"pickle {pickleId} cannot be assigned: its validation status is "
            f"{pickle['validation_status']!r}, not 'validated'"
        )
    store.execute(
        "UPDATE models SET assigned_pickle_id = ? WHERE id = ?", (pickle["id"], model["id"])
    )
    return "true"


def _trigger(store, account, context, modelId=None, pickleId=None, triggerValidation=False):
    if pickleId:
        pickle = _owned_pickle(store, account, pickleId)
    else:
        model = _owned_model(store, account, modelId)
        if not model["assigned_pickle_id"]:
            raise SandboxError(f"model {modelId} has no assigned pickle to trigger")
        pickle = _owned_pickle(store, account, model["assigned_pickle_id"])
    kind = "validation" if triggerValidation else "submission"
    if kind == "validation":
        store.execute(
            "UPDATE pickles SET validation_status = ?, updated_at = ? WHERE id = ?",
            (PENDING, time.time(), pickle["id"]),
        )
    _new_trigger(store, context, pickle["id"], modelId or pickle["model_id"], kind)
    return _pickle_dict(store, store.one("SELECT * FROM pickles WHERE id = ?", (pickle["id"],)))


def _update_label(store, account, context, pickleId, label=None):
    pickle = _owned_pickle(store, account, pickleId)
    store.execute("UPDATE pickles SET label = ? WHERE id = ?", (label, pickle["id"]))
    return _pickle_dict(store, store.one("SELECT * FROM pickles WHERE id = ?", (pickle["id"],)))


def _set_webhook(store, account, context, modelId=None, newSubmissionWebhook=None):
    """numerapi's ``set_submission_webhook``: set, or clear with null/"", a compute webhook."""
    model = _owned_model(store, account, modelId)
    if newSubmissionWebhook:
        if store.one("SELECT 1 FROM pickles WHERE model_id = ?", (model["id"],)):
            # After an upload the slot can no longer take a compute configuration (the same
            # documented rule, the other way round).
            raise SandboxError(
                f"model {model['name']!r} uses an uploaded pickle; it cannot take a "
                "submission webhook"
            )
        store.execute(
            "INSERT OR REPLACE INTO submission_webhooks VALUES (?, ?)",
            (model["id"], newSubmissionWebhook),
        )
    else:
        store.execute("DELETE FROM submission_webhooks WHERE model_id = ?", (model["id"],))
    return "true"


# --- helpers ----------------------------------------------------------------------------------


def _webhook(store, model_id) -> str | None:
    row = store.one("SELECT url FROM submission_webhooks WHERE model_id = ?", (model_id,))
    return row["url"] if row else None


def _new_trigger(store, context, pickle_id, model_id, kind) -> str:
    trigger_id = str(uuid.uuid4())
    now = time.time()
    store.execute(
        "INSERT INTO triggers VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        (trigger_id, pickle_id, model_id, kind, now, now),
    )
    store.add_status(trigger_id, "pending")
    context["worker"].submit(trigger_id)
    return trigger_id


def _owned_model(store, account, model_id):
    row = store.one(
        "SELECT * FROM models WHERE id = ? AND account_id = ?", (model_id, account["id"])
    )
    if row is None:
        # The same answer for "does not exist" and "belongs to someone else": accounts are
        # isolated and must not learn about each other's models.
        raise SandboxError(f"model {model_id} not found")
    return row


def _owned_pickle(store, account, pickle_id):
    row = store.one(
        "SELECT * FROM pickles WHERE id = ? AND account_id = ?", (pickle_id, account["id"])
    )
    if row is None:
        raise SandboxError(f"pickle {pickle_id} not found")
    return row


def _catalog_row(store, table, row_id, what):
    if row_id is None:
        row = store.one(f"SELECT * FROM {table} WHERE is_default = 1")
    else:
        row = store.one(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    if row is None:
        raise SandboxError(f"unknown {what} id {row_id!r}")
    return row


def _model_dict(store, row):
    return {
        "id": row["id"],
        "name": row["name"],
        "tournament": row["tournament"],
        "submissionWebhook": _webhook(store, row["id"]),
        "computePickleUpload": lambda info: (
            _pickle_dict(
                store,
                store.one("SELECT * FROM pickles WHERE id = ?", (row["assigned_pickle_id"],)),
            )
            if row["assigned_pickle_id"]
            else None
        ),
    }


def _pickle_dict(store, row):
    image = store.one("SELECT * FROM docker_images WHERE id = ?", (row["docker_image_id"],))
    version = store.one("SELECT * FROM data_versions WHERE id = ?", (row["data_version_id"],))
    triggers = store.all(
        "SELECT * FROM triggers WHERE pickle_id = ? ORDER BY inserted_at", (row["id"],)
    )
    assigned = store.all("SELECT id FROM models WHERE assigned_pickle_id = ?", (row["id"],))
    return {
        "id": row["id"],
        "filename": row["filename"],
        "label": row["label"],
        "modelId": row["model_id"],
        "assignedModelSlots": [m["id"] for m in assigned],
        "dataVersion": version["name"],
        "dataVersionId": version["id"],
        "dockerImage": f"{image['image']}:{image['tag']}",
        "dockerImageId": image["id"],
        "dockerImageName": image["name"],
        "runtime": image["name"],
        "validationStatus": row["validation_status"],
        "diagnosticsId": None,
        "diagnosticsStatus": None,
        "diagnosticsStatusDescription": None,
        "triggerStatus": triggers[-1]["status"] if triggers else None,
        "triggers": [_trigger_dict(store, t) for t in triggers],
        "insertedAt": _time(row["inserted_at"]),
        "updatedAt": _time(row["updated_at"]),
        "version": 1,
    }


def _trigger_dict(store, row):
    statuses = store.all(
        "SELECT * FROM trigger_statuses WHERE trigger_id = ? ORDER BY id", (row["id"],)
    )
    return {
        "id": row["id"],
        "computePickleUploadId": row["pickle_id"],
        "type": row["type"],
        "status": row["status"],
        "roundId": None,
        "submissionId": None,
        "statuses": [
            {
                "id": str(s["id"]),
                "computePickleTriggerId": row["id"],
                "status": s["status"],
                "description": s["description"],
                "insertedAt": _time(s["inserted_at"]),
                "updatedAt": _time(s["inserted_at"]),
            }
            for s in statuses
        ],
        "insertedAt": _time(row["inserted_at"]),
        "updatedAt": _time(row["updated_at"]),
    }


def _image_dict(row):
    return {
        "id": row["id"],
        "name": row["name"],
        "image": row["image"],
        "tag": row["tag"],
        "default": bool(row["is_default"]),
        "deprecated": False,
        "experimental": False,
        "insertedAt": _time(row["inserted_at"]),
    }


def _logs(store, trigger_id):
    return [
        {"message": row["message"], "timestamp": row["timestamp"]}
        for row in store.all("SELECT * FROM logs WHERE trigger_id = ? ORDER BY id", (trigger_id,))
    ]


def _time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
