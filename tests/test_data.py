import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from cifar_fixtures import SHARED_CIFAR, make_archive, write_dataset
from training import data
from training.data import DataError, load_batch, load_cifar10, resolve_data_dir


def test_loads_official_layout_and_splits_validation_from_train(tmp_path):
    write_dataset(tmp_path / "c", per_batch=40)
    cifar = load_cifar10(tmp_path / "c", validation_size=20)
    assert cifar.train.x.shape == (180, 32, 32, 3) and cifar.train.x.dtype == np.uint8
    assert len(cifar.val) == 20 and len(cifar.test) == 40
    # The validation rows are the last training rows (of data_batch_5), never test rows.
    last = load_batch(tmp_path / "c" / "data_batch_5")
    np.testing.assert_array_equal(cifar.val.x, last.x[-20:])
    np.testing.assert_array_equal(cifar.val.y, last.y[-20:])


def test_channel_planes_become_nhwc(tmp_path):
    write_dataset(tmp_path / "c", per_batch=2)
    import pickle
    raw = pickle.load(open(tmp_path / "c" / "test_batch", "rb"), encoding="bytes")[b"data"]
    split = load_batch(tmp_path / "c" / "test_batch")
    # Pixel (row 0, col 1) of image 0: R at offset 1, G at 1024 + 1, B at 2048 + 1.
    assert tuple(split.x[0, 0, 1]) == (raw[0, 1], raw[0, 1025], raw[0, 2049])


def test_env_var_points_at_data(tmp_path, monkeypatch):
    write_dataset(tmp_path / "c", per_batch=4)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "c"))
    assert resolve_data_dir() == tmp_path / "c"


def test_missing_directory_names_it(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir(tmp_path / "nowhere")


def test_partial_data_names_missing_file(tmp_path):
    write_dataset(tmp_path / "c", per_batch=4)
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing data_batch_3"):
        resolve_data_dir(tmp_path / "c")


def test_corrupt_batch_names_file(tmp_path):
    write_dataset(tmp_path / "c", per_batch=4)
    path = tmp_path / "c" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])  # truncated download
    with pytest.raises(DataError, match="test_batch is corrupt"):
        load_cifar10(tmp_path / "c", validation_size=4)


def test_too_little_training_data_for_the_validation_split(tmp_path):
    write_dataset(tmp_path / "c", per_batch=4)
    with pytest.raises(DataError, match="too few to hold out 5000"):
        load_cifar10(tmp_path / "c")


@pytest.fixture
def archive_server(tmp_path):
    """Serves a tiny cifar-10-python.tar.gz on localhost."""
    served = tmp_path / "served"
    served.mkdir()
    payload = make_archive(served / "cifar-10-python.tar.gz")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz", hashlib.sha256(payload).hexdigest()
    server.shutdown()


def test_download_checks_hash_and_caches(archive_server, tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    url, sha = archive_server
    cache = tmp_path / "cache"
    path = resolve_data_dir(url=url, sha256=sha, cache_dir=cache)
    assert path == cache / "cifar-10-batches-py"
    assert len(load_cifar10(path, validation_size=5).test) == 10
    # Second call uses the cache: it works even with the server's URL gone.
    assert resolve_data_dir(url="http://127.0.0.1:9/none", sha256=sha, cache_dir=cache) == path


def test_download_with_wrong_hash_is_refused_and_deleted(archive_server, tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    url, _ = archive_server
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="expected 0000"):
        resolve_data_dir(url=url, sha256="0" * 64, cache_dir=cache)
    assert not any(cache.glob("*.tar.gz*")) and not (cache / "cifar-10-batches-py").exists()


def test_unreachable_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(DataError, match="--data-dir"):
        resolve_data_dir(url="http://127.0.0.1:9/cifar-10-python.tar.gz", cache_dir=tmp_path)


def test_official_download_address_is_the_published_one():
    assert data.CIFAR10_URL == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert data.CIFAR10_SHA256 == "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason=f"real CIFAR-10 not at {SHARED_CIFAR}: set CIFAR10_DIR to a cifar-10-batches-py folder to run it")
def test_real_cifar10_spot_values():
    cifar = load_cifar10(SHARED_CIFAR)
    assert (len(cifar.train), len(cifar.val), len(cifar.test)) == (45000, 5000, 10000)
    assert cifar.train.y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert cifar.test.y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert tuple(cifar.train.x[0, 0, 0]) == (59, 62, 63)
    assert tuple(cifar.test.x[0, 0, 0]) == (158, 112, 49)
