import json

import numpy as np
import pytest

from tfdl.serving.client import Client, ServingClientError, load_request


def test_client_status_metadata_and_predict(digits_server):
    with Client(digits_server.url, "digits") as client:
        assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"
        assert "serving_default" in client.metadata(version=1)["metadata"]["signature_def"]["signature_def"]
        rows = np.zeros((2, 64), dtype="float32")
        row = client.predict(instances=rows)["predictions"]
        columnar = client.predict(inputs={"pixels": rows}, version=1)["outputs"]
        assert np.shape(row) == (2, 10)
        np.testing.assert_allclose(row, columnar)


def test_client_raises_the_server_error_with_its_status(digits_server):
    with pytest.raises(ServingClientError) as error:
        Client(digits_server.url, "missing").predict(instances=[[0.0] * 64])
    assert error.value.status == 404 and "Servable not found" in error.value.message
    with pytest.raises(ValueError, match="exactly one"):
        Client(digits_server.url, "digits").predict()


def test_load_request_from_npy_json_and_inline(tmp_path):
    array = np.arange(6, dtype="float32").reshape(2, 3)
    np.save(tmp_path / "x.npy", array)
    assert load_request(str(tmp_path / "x.npy")) == {"instances": array.tolist()}
    (tmp_path / "r.json").write_text(json.dumps({"inputs": [[1, 2]]}))
    assert load_request(str(tmp_path / "r.json")) == {"inputs": [[1, 2]]}
    assert load_request("[[1, 2]]", columnar=True) == {"inputs": [[1, 2]]}
    with pytest.raises(ValueError, match="neither a file nor valid JSON"):
        load_request("not json")
