"""The Dask client of ``nmr test --dask``: runs in the runtime's Python with ``distributed``.

Started by builder/diagnostics/dask_pool.py as ``<runtime python> dask_driver.py SPEC.json``
(``PYTHONPATH``: the worker env's site directory, then this directory), so the client, the
scheduler and the workers share the runtime's Python and pins, and predictions are those of
Numerai's container. It never imports ``builder``.

Tasks refer to ``model_child.predict_task`` by module path: the client uploads model_child.py's
*source* to the workers (``Client.upload_file``), never pickled bytecode, which does not cross
Python minor versions. The pickle is scattered to the workers once; each worker reads its rows
of the validation file from the path or fsspec URL in SPEC (never through the scheduler) and
returns its task's predictions (parquet bytes, a few MB), which this driver writes to
``OUT_DIR/pred-<task>.parquet`` and announces as ``done <task>`` on stdout. A task whose worker
dies is run again on another worker (``retries`` plus Dask's own rescheduling of the lost
worker's tasks), so a killed worker costs time, never a wrong or missing era.

SPEC: {"scheduler": ADDRESS or "local", "workers": N (local), "pickle", "validation",
"benchmarks" (or null), "out_dir", "tasks": [[name, start, end], ...]}.
"""

import hashlib
import json
import sys
from pathlib import Path

RETRIES = 3


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    import model_child
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if spec["scheduler"] == "local":
        cluster = LocalCluster(
            n_workers=spec["workers"],
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        client = Client(spec["scheduler"])
    try:
        client.upload_file(str(here / "model_child.py"))
        data = Path(spec["pickle"]).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        pickled = client.scatter(data, broadcast=True)
        futures = {}
        for name, start, end in spec["tasks"]:
            future = client.submit(
                model_child.predict_task,
                pickled,
                digest,
                spec["validation"],
                spec["benchmarks"],
                start,
                end,
                key=f"nmr-validate-{digest[:12]}-{name}",
                retries=RETRIES,
                pure=False,
            )
            futures[future] = name
        print(f"submitted {len(futures)}", flush=True)
        for future in as_completed(futures):
            name = futures[future]
            (Path(spec["out_dir"]) / f"pred-{name}.parquet").write_bytes(future.result())
            print(f"done {name}", flush=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main(sys.argv[1])
