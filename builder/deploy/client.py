"""A GraphQL client for Numerai's API, limited to what model uploads need.

The upload documents are numerapi's, verbatim (``computePickleUploadAuth``, PUT to the presigned
URL, ``createComputePickleUpload``; docs/design/numerai.md §4.2), so anything numerapi can do against a
server, this client can too. The other operations follow the introspected schema (§5).

Transport: JSON POST to the API root with ``Authorization: Token PUBLIC_ID$SECRET_KEY``.
Every request has a timeout; 5xx answers, timeouts and connection errors are retried with
exponential backoff. The two mutations that create things (``addModel``,
``createComputePickleUpload``) are not retried blindly: a request that timed out may have
succeeded, so before retrying the client looks for what it was creating. GraphQL errors become
one ``ApiError`` sentence naming the operation. The secret key never appears in a message.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from builder.errors import NmrError

DEFAULT_API_URL = "https://api-tournament.numer.ai"
CLASSIC_TOURNAMENT = 8  # only Classic supports model uploads (docs/design/numerai.md §1.10)

PICKLE_FIELDS = """
    id filename modelId assignedModelSlots validationStatus triggerStatus
    dataVersion dataVersionId dockerImage dockerImageId dockerImageName
    insertedAt updatedAt
    triggers { id type status insertedAt statuses { status description insertedAt } }
"""


class ApiError(NmrError):
    """The Numerai API (or the sandbox) refused or failed a request."""


@dataclass(frozen=True)
class Credentials:
    public_id: str
    secret_key: str = field(repr=False)

    @classmethod
    def from_env(cls) -> Credentials | None:
        public_id = os.environ.get("NUMERAI_PUBLIC_ID", "").strip()
        secret_key = os.environ.get("NUMERAI_SECRET_KEY", "").strip()
        if public_id and secret_key:
            return cls(public_id, secret_key)
        return None

    def header(self) -> str:
        return f"Token {self.public_id}${self.secret_key}"


class NumeraiClient:
    """Talks to ``url`` (Numerai's API or a sandbox) as the account of ``credentials``."""

    def __init__(
        self,
        url: str | None = None,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        upload_timeout: float = 600.0,
        retries: int = 4,
        backoff: float = 0.5,
    ):
        self.url = (url or DEFAULT_API_URL).rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.upload_timeout = upload_timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        # One requests.Session per thread: `nmr apply --parallel` works on slots from a thread
        # pool, and requests does not promise that a Session is thread-safe.
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    @classmethod
    def from_env(cls, url: str | None = None, **options) -> NumeraiClient:
        """Endpoint from ``NUMERAI_API_URL``, keys from ``NUMERAI_PUBLIC_ID``/``NUMERAI_SECRET_KEY``."""
        credentials = Credentials.from_env()
        if credentials is None:
            raise NmrError(
                "Numerai API keys are missing: set NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY "
                "(or try the local sandbox with --sandbox)"
            )
        url = url or os.environ.get("NUMERAI_API_URL") or None
        if url is not None and not url.startswith(("http://", "https://")):
            # requests would raise MissingSchema / InvalidSchema deep inside the first call
            raise NmrError(f"NUMERAI_API_URL {url!r} is not an http:// or https:// URL")
        return cls(url, credentials, **options)

    # --- operations --------------------------------------------------------------------

    def models(self) -> list[dict]:
        """The account's model slots with their assigned pickle (``computePickleUpload``)."""
        data = self.query(
            "account",
            "query { account { models { id name tournament submissionWebhook"
            " computePickleUpload {" + PICKLE_FIELDS + "} } } }",
        )
        return list((data or {}).get("models") or [])

    def add_model(self, name: str, tournament: int = CLASSIC_TOURNAMENT) -> dict:
        document = (
            "mutation($name: String!, $tournament: Int!) {"
            " addModel(name: $name, tournament: $tournament) { id name tournament } }"
        )
        variables = {"name": name, "tournament": tournament}
        return self._create_reconciled(
            "addModel",
            document,
            variables,
            find=lambda: next((m for m in self.models() if m["name"] == name), None),
        )

    def set_submission_webhook(self, model_id: str, webhook: str | None) -> None:
        """numerapi's ``set_submission_webhook`` document; ``None`` clears the webhook."""
        self.query(
            "setSubmissionWebhook",
            """
            mutation($modelId: String! $newSubmissionWebhook: String) {
                setSubmissionWebhook(modelId: $modelId
                                     newSubmissionWebhook: $newSubmissionWebhook)
            }
            """,
            {"modelId": model_id, "newSubmissionWebhook": webhook},
        )

    def upload_auth(self, filename: str, model_id: str | None) -> dict:
        """numerapi's ``computePickleUploadAuth``: ``{filename, url}``; register that filename."""
        return self.query(
            "computePickleUploadAuth",
            """
            query($filename: String! $modelId: String) {
                computePickleUploadAuth(filename: $filename
                                        modelId: $modelId) {
                    filename
                    url
                }
            }
            """,
            {"filename": filename, "modelId": model_id},
        )

    def put_file(self, url: str, data: bytes) -> None:
        """PUT the bytes to the presigned URL, with no Content-Type (the URL is signed without one)."""

        def send():
            response = self._session.put(url, data=data, timeout=self.upload_timeout)
            if response.status_code >= 500:
                raise _Transient(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                raise ApiError(
                    f"Numerai API upload failed: HTTP {response.status_code} "
                    f"{_first_line(response.text)}"
                )

        self._with_retries("upload", send)

    def create_pickle(
        self,
        filename: str,
        model_id: str | None,
        data_version_id: str | None = None,
        docker_image_id: str | None = None,
        tournament: int = CLASSIC_TOURNAMENT,
    ) -> str:
        """numerapi's ``createComputePickleUpload``; returns the pickle id."""
        document = """
            mutation($filename: String!
                     $tournament: Int!
                     $modelId: String
                     $dataVersionId: String
                     $dockerImageId: String) {
                createComputePickleUpload(filename: $filename
                                          tournament: $tournament
                                          modelId: $modelId
                                          dataVersionId: $dataVersionId
                                          dockerImageId: $dockerImageId) {
                    id
                }
            }"""
        variables = {
            "filename": filename,
            "tournament": tournament,
            "modelId": model_id,
            "dataVersionId": data_version_id,
            "dockerImageId": docker_image_id,
        }
        created = self._create_reconciled(
            "createComputePickleUpload",
            document,
            variables,
            find=lambda: next(
                (p for p in self.pickles(model_id=model_id) if p["filename"] == filename), None
            ),
        )
        return created["id"]

    def upload_pickle(
        self,
        path: Path,
        model_id: str | None,
        filename: str | None = None,
        data_version_id: str | None = None,
        docker_image_id: str | None = None,
    ) -> str:
        """The whole numerapi ``model_upload`` flow; returns the new pickle id."""
        auth = self.upload_auth(filename or Path(path).name, model_id)
        self.put_file(auth["url"], Path(path).read_bytes())
        return self.create_pickle(auth["filename"], model_id, data_version_id, docker_image_id)

    def pickles(self, model_id: str | None = None, pickle_id: str | None = None) -> list[dict]:
        data = self.query(
            "computePickles",
            "query($id: ID, $modelId: ID) { computePickles(id: $id, modelId: $modelId) {"
            + PICKLE_FIELDS
            + "} }",
            {"id": pickle_id, "modelId": model_id},
        )
        return list(data or [])

    def assign(self, model_id: str, pickle_id: str) -> None:
        self.query(
            "assignPickleToModel",
            "mutation($modelId: String, $pickleId: ID) {"
            " assignPickleToModel(modelId: $modelId, pickleId: $pickleId) }",
            {"modelId": model_id, "pickleId": pickle_id},
        )

    def trigger(self, model_id: str, pickle_id: str, trigger_validation: bool = False) -> dict:
        return self.query(
            "triggerComputePickleUpload",
            "mutation($modelId: ID, $pickleId: ID, $triggerValidation: Boolean) {"
            " triggerComputePickleUpload(modelId: $modelId, pickleId: $pickleId,"
            " triggerValidation: $triggerValidation) {" + PICKLE_FIELDS + "} }",
            {"modelId": model_id, "pickleId": pickle_id, "triggerValidation": trigger_validation},
        )

    def trigger_logs(self, trigger_id: str) -> list[dict]:
        data = self.query(
            "triggerLogs",
            "query($triggerId: ID!) { triggerLogs(triggerId: $triggerId) { message timestamp } }",
            {"triggerId": trigger_id},
        )
        return list(data or [])

    def data_versions(self) -> list[dict]:
        return list(
            self.query(
                "computePickleDataVersions",
                "query { computePickleDataVersions { id name default } }",
            )
            or []
        )

    def docker_images(self) -> list[dict]:
        return list(
            self.query(
                "computePickleDockerImages",
                "query { computePickleDockerImages { id name image tag default } }",
            )
            or []
        )

    # --- transport ---------------------------------------------------------------------

    def query(self, operation: str, document: str, variables: dict | None = None):
        """POST one document; returns ``data[operation]``. Retries transient failures."""
        return self._with_retries(operation, lambda: self._post(operation, document, variables))

    def _post(self, operation: str, document: str, variables: dict | None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.header()
        response = self._session.post(
            self.url,
            json={"query": document, "variables": variables or {}},
            headers=headers,
            timeout=self.timeout,
        )
        if response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code} from {self.url}")
        try:
            payload = response.json()
        except ValueError:
            raise ApiError(
                self._scrub(
                    f"Numerai API {operation} failed: HTTP {response.status_code} "
                    f"{_first_line(response.text)}"
                )
            ) from None
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            message = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e)
                for e in (errors if isinstance(errors, list) else [errors])
            )
            raise ApiError(self._scrub(f"Numerai API {operation} failed: {message}"))
        if response.status_code >= 400:
            raise ApiError(f"Numerai API {operation} failed: HTTP {response.status_code}")
        return (payload.get("data") or {}).get(operation)

    def _with_retries(self, operation: str, send):
        delay = self.backoff
        last = ""
        for attempt in range(1, self.retries + 1):
            try:
                return send()
            except _Transient as error:
                last = str(error)
            except requests.Timeout:
                last = f"no answer within {self.timeout:g} s"
            except requests.ConnectionError:
                last = f"cannot connect to {self.url}"
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        raise ApiError(
            self._scrub(f"Numerai API {operation} failed after {self.retries} attempts: {last}")
        )

    def _create_reconciled(self, operation: str, document: str, variables: dict, find) -> dict:
        """Send a creating mutation once; on a transient failure, look before sending again."""
        for _ in range(self.retries):
            try:
                return self._with_retries_once(operation, document, variables)
            except _Transient:
                existing = find()
                if existing is not None:
                    return existing
                time.sleep(self.backoff)
        raise ApiError(f"Numerai API {operation} failed after {self.retries} attempts")

    def _with_retries_once(self, operation: str, document: str, variables: dict) -> dict:
        try:
            return self._post(operation, document, variables)
        except requests.Timeout:
            raise _Transient("timeout") from None
        except requests.ConnectionError:
            raise _Transient("connection error") from None

    def _scrub(self, message: str) -> str:
        if self.credentials and self.credentials.secret_key:
            message = message.replace(self.credentials.secret_key, "***")
        return message


class _Transient(Exception):
    """A failure worth retrying (5xx, timeout, dropped connection)."""


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else ""
