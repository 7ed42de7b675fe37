"""numerai-predict's predict.py, re-implemented for local emulation.

This file runs as a standalone script inside the runtime venv (numpy, pandas, cloudpickle,
pyarrow only), so it imports nothing from ``builder``. The runner copies it to a scratch
directory as ``predict.py`` and runs it like the container's ENTRYPOINT ``python predict.py``.

It follows numerai-predict's predict.py (github.com/numerai/numerai-predict, HEAD and image
a78dedd; its steps are listed in docs/readme/test.md, "What a run does"): the same
order of steps, the same log lines on stderr in logging's default ``LEVEL:root:message``
format, the same error messages, the same help block and exit codes. Differences from the
real script, all deliberate:
  * a model URL or a dataset name (NumerAPI download) is refused: the emulation has no
    network, the runner always stages local files;
  * ``--post_url`` upload is not emulated (the runner reads the CSV from --output_dir);
  * when NMR_BLOCK_NETWORK=1 sockets are disabled before the pickle is loaded (the fallback
    when the runner cannot put the process in an empty network namespace);
  * NMR_CPU_LIST / NMR_ADDRESS_SPACE_BYTES pin the process to those cores and cap its
    address space before numpy and pandas are imported (so OpenBLAS sizes its thread pool
    for the pinned cores). Applying them here rather than in a ``preexec_fn`` keeps the
    runner safe to call from threads (the sandbox's validation worker does).
"""

import os
import resource


def _apply_limits():
    cpus = os.environ.get("NMR_CPU_LIST")
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    address_space = os.environ.get("NMR_ADDRESS_SPACE_BYTES")
    if address_space:
        limit = int(address_space)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


_apply_limits()

import argparse  # noqa: E402
import logging  # noqa: E402
import pickle  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
from inspect import signature  # noqa: E402

import pandas as pd  # noqa: E402

HELP_RULE = "-" * 80


def main(argv=None):
    args = _parse_args(argv)
    if os.environ.get("NMR_BLOCK_NETWORK") == "1":
        _block_network()
    logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.INFO)
    logging.info("Running numerai-predict:%s - Python %s", os.getenv("GIT_REF"), _py_version())

    if args.model.lower().startswith("http"):
        logging.error("Model URLs are not supported by the local emulation - %s", args.model)
        _exit_with_help(1)
    model_pkl = args.model

    logging.info("Loading model %s", model_pkl)
    try:
        model = pd.read_pickle(model_pkl)
    except pickle.UnpicklingError as e:
        logging.error("Invalid pickle - %s", e)
        if args.debug:
            logging.exception(e)
        _exit_with_help(1)
    except TypeError as e:
        logging.error("Pickle incompatible with %s", _py_version())
        if args.debug:
            logging.exception(e)
        else:
            logging.error(e)
        _exit_with_help(1)
    except ModuleNotFoundError as e:
        logging.error("Import error reading pickle - %s", e)
        if args.debug:
            logging.exception(e)
        _exit_with_help(1)
    logging.debug(model)

    # predict.py counts every parameter (defaults, *args, **kwargs included) and does so
    # outside any try: a non-callable pickle dies here with a bare traceback, no help block.
    num_args = len(signature(model).parameters)

    live_features = _get_data(args.dataset)
    benchmark_models = None
    if num_args > 1:
        benchmark_models = _get_data(args.benchmarks)

    logging.info("Predicting on %d rows of live features", len(live_features))
    try:
        if num_args == 1:
            predictions = model(live_features)
        elif num_args == 2:
            predictions = model(live_features, benchmark_models)
        else:
            logging.error("Invalid pickle function - %s must have 1 or 2 arguments", model_pkl)
            _exit_with_help(1)

        if predictions is None:
            logging.error("Pickle function is invalid - returned None")
            _exit_with_help(1)
        elif type(predictions) is not pd.DataFrame:
            logging.error(
                "Pickle function is invalid - returned %s instead of pd.DataFrame",
                type(predictions),
            )
            _exit_with_help(1)
        elif len(predictions) == 0:
            logging.error("Pickle function returned 0 predictions")
            _exit_with_help(1)
        elif predictions.isna().any().any():
            logging.error("Pickle function returned at least 1 NaN prediction")
            _exit_with_help(1)
        elif not predictions.iloc[:, 0].between(0, 1).all():
            logging.error(
                "Pickle function returned invalid predictions. Ensure values are between 0 and 1."
            )
            _exit_with_help(1)
    except TypeError as e:
        logging.error("Pickle function is invalid - %s", e)
        if args.debug:
            logging.exception(e)
        _exit_with_help(1)
    except Exception as e:
        logging.exception(e)
        _exit_with_help(1)

    logging.info("Generated %d predictions", len(predictions))
    logging.debug(predictions)

    predictions_csv = os.path.join(args.output_dir, f"live_predictions-{secrets.token_hex(6)}.csv")
    logging.info("Saving predictions to %s", predictions_csv)
    try:
        predictions.to_csv(predictions_csv, index=True)
    except Exception as e:
        # predict.py only logs a failed local write; the exit code stays 0
        logging.error("Error writing predictions to CSV: %s", e)


def _parse_args(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="v5.0/live.parquet")
    parser.add_argument("--benchmarks", default="v5.0/live_benchmark_models.parquet")
    parser.add_argument("--model", required=True)
    parser.add_argument("--output_dir", default="/tmp")
    parser.add_argument("--debug", action="store_true")
    return parser.parse_args(argv)


def _py_version(separator="."):
    return separator.join(sys.version.split(".")[:2])


def _exit_with_help(code):
    git_ref = os.getenv("GIT_REF", "latest")
    image = f"ghcr.io/numerai/numerai_predict_py_{_py_version('_')}:{git_ref}"
    handler = logging.root.handlers[0]
    handler.flush()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.info(
        "\n".join(
            [
                "",
                HELP_RULE,
                "Debug your pickle model locally via docker command:",
                "",
                f'    docker run -i --rm -v "$PWD:$PWD" {image} --debug --model $PWD/[PICKLE_FILE]',
                "",
                "Try our other support resources:",
                "    [Github]  https://github.com/numerai/numerai-predict",
                "    [Discord] https://discord.com/channels/894652647515226152/1089652477957246996",
                HELP_RULE,
            ]
        )
    )
    sys.exit(code)


def _get_data(dataset):
    if os.path.exists(dataset):
        logging.info("Using local %s for live data", dataset)
    elif dataset.startswith("/"):
        logging.error("Local dataset not found - %s does not exist!", dataset)
        _exit_with_help(1)
    else:
        # the container would download it with NumerAPI; the emulation has no network
        logging.error("Local dataset not found - %s does not exist!", dataset)
        _exit_with_help(1)
    logging.info("Loading live features %s", dataset)
    return pd.read_parquet(dataset)


def _block_network():
    """Make every socket operation that could reach a network fail like an unplugged host."""
    import errno
    import socket

    def refuse(*_args, **_kwargs):
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    class _NoNetworkSocket(socket.socket):
        def connect(self, *args, **kwargs):
            refuse()

        def connect_ex(self, *args, **kwargs):
            refuse()

        def sendto(self, *args, **kwargs):
            refuse()

    socket.socket = _NoNetworkSocket
    socket.create_connection = refuse
    socket.getaddrinfo = refuse


if __name__ == "__main__":
    main()
