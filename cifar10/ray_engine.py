"""``cifar10 classify --engine ray``: the same rows as the local engine, computed on a Ray cluster.

Ray Data runs over the file list (paths, sizes, mtimes; listed and stat'ed once by the driver);
``map_batches`` sends blocks of paths to a pool of actors, each holding one onnxruntime
:class:`~cifar10.inference.Classifier` (the model is loaded once per actor, from bytes shipped by the
driver, so the model file need not be on the workers). An actor decodes its files with the same
:func:`cifar10.preprocess.load_image` and runs the same batched inference as the local engine
(:func:`cifar10.inference.iter_result_batches`), so labels, probabilities and error messages are the
same. The driver receives the rows in input order and writes each block as a Parquet shard of the
run's journal (:mod:`cifar10.resume`); OUT (CSV/JSON) is written from the journal at the end.

The image files must be readable under the same paths on every node (a shared file system).
Ray is an optional extra: nothing here imports it at module level.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

from cifar10.errors import UserFacingError

RAY_EXTRA = "pip install -e '.[ray]'"
LOCAL_OBJECT_STORE_BYTES = 512 * 1024 * 1024  # the local instance's shared memory: rows are small


def missing_ray_message(module: str = "ray") -> str:
    return f"--engine ray needs the 'ray' extra ({module} is not installed): {RAY_EXTRA}"


def import_ray():
    """``ray`` with Ray Data and pyarrow, or a one-line UserFacingError naming the extra."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UserFacingError(missing_ray_message((exc.name or "ray").split(".")[0])) from None
    return ray


class RaySession:
    """``ray.init`` for one command: connect to ``address`` (else ``$RAY_ADDRESS``), or start a local
    instance on 127.0.0.1 only.

    Use as a context manager; a local instance it started is shut down at the end. ``describe()`` says
    what it runs on (nodes, CPUs).
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        # Ray's own convention: $RAY_ADDRESS points at a cluster when --address is not given.
        self.address, self.num_cpus = address or os.environ.get("RAY_ADDRESS") or None, num_cpus
        self.ray = None
        self.started = False
        self.startup_s = 0.0

    def __enter__(self) -> "RaySession":
        import time

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
        # Ray's C++ core prints internal notices on stderr (e.g. ray-project/ray#53727 for every Ray Data
        # actor pool); failures still reach us as Python exceptions. RAY_BACKEND_LOG_LEVEL=info to see them.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        if not self.address:
            # A local instance binds to 127.0.0.1 only (nobody else on the network can submit work to it).
            # Read by Ray when it is imported, hence before the import.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        started = time.perf_counter()
        ray = import_ray()
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                          configure_logging=True)
            if self.address:
                try:
                    ray.init(address=self.address, **kwargs)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise UserFacingError(f"cannot connect to the Ray cluster at {self.address}: {exc}") from None
            else:
                ray.init(address="local", num_cpus=self.num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                         **kwargs)
            self.started = True
        self.ray = ray
        self.startup_s = time.perf_counter() - started
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            self.ray.shutdown()

    def nodes(self) -> list[dict]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 1))

    def describe(self) -> str:
        nodes = self.nodes()
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        return f"{where}: {len(nodes)} node{'s' * (len(nodes) != 1)}, {self.cpus()} CPUs"


class OnnxPredictor:
    """A Ray Data actor: one onnxruntime session, loaded once; each call classifies a block of paths."""

    def __init__(self, model_name: str, model_files: dict, provider: str = "auto",
                 threads: int = 1, decode_workers: int = 2, batch_size: int = 256):
        from cifar10.inference import Classifier
        from cifar10.registry import load_model_info

        if "ref" in model_files:  # the bytes were put in the object store once by the driver
            import ray

            model_files = ray.get(model_files["ref"])
        self._folder = tempfile.TemporaryDirectory(prefix="cifar10-ray-model-")
        for name, data in model_files.items():
            Path(self._folder.name, name).write_bytes(data)
        model = load_model_info(Path(self._folder.name, model_name + ".onnx"))
        self.classifier = Classifier(model, provider=provider, threads=threads)
        self.decode_workers, self.batch_size = decode_workers, batch_size

    def __call__(self, batch):
        from cifar10.inference import iter_result_batches
        from cifar10.resume import FileKey, make_record, records_to_table

        paths = batch.column("path").to_pylist()
        keys = [FileKey(k, s, m) for k, s, m in zip(batch.column("key").to_pylist(), batch.column("size").to_pylist(),
                                                    batch.column("mtime_ns").to_pylist())]
        # Open the absolute path (a worker's working folder is not the user's), report the path as given.
        results = [r for chunk in iter_result_batches(self.classifier, [k.key for k in keys], batch_size=self.batch_size,
                                                      workers=self.decode_workers) for r in chunk]
        records = []
        for path, key, result in zip(paths, keys, results):
            result.path = path
            records.append(make_record(result, key))
        return records_to_table(records)


def model_files(model) -> dict[str, bytes]:
    """The .onnx and its card, shipped to the actors (a user's models folder is not on the workers)."""
    onnx_path = Path(model.onnx_path)
    return {onnx_path.name: onnx_path.read_bytes(),
            onnx_path.with_suffix(".json").name: onnx_path.with_suffix(".json").read_bytes()}


def classify_ray(session: RaySession, model, todo, journal, *, batch_size: int = 256, provider: str = "auto",
                 actors: int | None = None, on_rows: Callable[[int], None] | None = None) -> int:
    """Classify ``todo`` ((path, FileKey) pairs) on ``session``'s cluster into ``journal``; returns rows done."""
    if not todo:
        return 0
    ray = session.ray
    from ray.data import DataContext

    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order, as the local engine's
    context.enable_progress_bars = False             # the command prints its own (files/s, ETA)
    context.print_on_execution_start = False
    block = batch_size * 4
    blocks = max(1, math.ceil(len(todo) / block))
    actors = min(actors or max(1, session.cpus()), blocks)
    items = [{"path": path, "key": key.key, "size": key.size, "mtime_ns": key.mtime_ns} for path, key in todo]
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    # The model's bytes go into the object store once; each actor fetches them (small constructor args).
    model_ref = ray.put(model_files(model))
    ds = ds.map_batches(OnnxPredictor, batch_size=block, batch_format="pyarrow", num_cpus=1,
                        compute=ray.data.ActorPoolStrategy(size=actors),
                        fn_constructor_kwargs={"model_name": Path(model.onnx_path).stem,
                                               "model_files": {"ref": model_ref}, "provider": provider,
                                               "threads": 1, "decode_workers": 2,
                                               "batch_size": batch_size})
    done = 0
    for table in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=4):
        if table.num_rows == 0:
            continue
        journal.append_table(table)
        done += table.num_rows
        if on_rows is not None:
            on_rows(table.num_rows)
    return done
