"""Triton's own HTTP client (tritonclient, with its defaults) talking to `mlgate serve` over a
real socket, unmodified: a process, because the client is one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton

from tests.e2e import http
from tests.e2e.helpers import admin_key, quickstarted, running_server
from tests.integration.test_protocols import FRAME, RECORDS


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("triton") / "home"
    quickstarted(home)
    headers = {"Authorization": f"Bearer {admin_key(home, 'predict', 'read')}"}
    with running_server(home) as base:
        yield base, headers


@pytest.mark.parametrize("binary", [True, False], ids=["defaults-binary", "json"])
def test_oip_tabular_infer_through_tritons_own_client(
    served: tuple[str, dict[str, str]], binary: bool
) -> None:
    """With the client's defaults every input goes as binary data and every output comes back
    as binary data (binary_data_output); with binary_data=False both go as JSON."""
    base, headers = served
    client = triton.InferenceServerClient(url=base.removeprefix("http://"))
    try:
        assert client.is_server_live(headers=headers) and client.is_server_ready(headers=headers)
        assert client.is_model_ready("churn", headers=headers)
        assert "binary_tensor_data" in client.get_server_metadata(headers=headers)["extensions"]
        metadata = client.get_model_metadata("churn", headers=headers)
        inputs = []
        for name, column in FRAME.items():
            if not pd.api.types.is_numeric_dtype(column):
                values = np.array([("" if v is None else v) for v in column], dtype=object)
                tensor = triton.InferInput(name, [len(values)], "BYTES")
            else:
                values = column.to_numpy(dtype="float64")
                if not binary:  # JSON cannot carry NaN: that column goes without it
                    values = np.nan_to_num(values)
                tensor = triton.InferInput(name, [len(values)], "FP64")
            if binary:
                tensor.set_data_from_numpy(values)  # the default: binary_data=True
            else:
                tensor.set_data_from_numpy(values, binary_data=False)
            inputs.append(tensor)
        if binary:
            # The client adds its own headers to the dict it is given: each call gets a copy.
            result = client.infer("churn", inputs, request_id="req-7", headers=dict(headers))
        else:
            outputs = [triton.InferRequestedOutput(o, binary_data=False)
                       for o in ("predict", "predict_proba")]  # fmt: skip
            result = client.infer(
                "churn", inputs, outputs=outputs, request_id="req-7", headers=dict(headers)
            )
        response = result.get_response()
        assert response["id"] == "req-7" and response["model_version"] == "1"
        announced = [(o["name"], o["datatype"]) for o in metadata["outputs"]]
        assert [(o["name"], o["datatype"]) for o in response["outputs"]] == announced
        assert all(("data" in o) != binary for o in response["outputs"])
        predicted = result.as_numpy("predict")
        assert predicted is not None and predicted.shape == (8,)
        rows = RECORDS if binary else [
            dict(r, total_charges=r["total_charges"] if r["total_charges"] is not None else 0.0)
            for r in RECORDS
        ]  # fmt: skip
        ours = http.post(
            f"{base}/v1/models/churn/predict", headers=headers, json={"rows": rows}
        ).json()
        labels = [v.decode() if isinstance(v, bytes) else v for v in predicted.tolist()]
        assert labels == ours["predictions"]
        np.testing.assert_allclose(result.as_numpy("predict_proba"), ours["probabilities"],
                                   atol=1e-12)  # fmt: skip
    finally:
        client.close()


def test_triton_reads_an_answer_that_carries_warnings(served: tuple[str, dict[str, str]]) -> None:
    """The rows' warnings ride in the response's parameters as one JSON string (OIP parameters
    are scalars): Triton's client parses such an answer over a real socket, as its default
    binary outputs and as JSON."""
    import json

    from tests.integration.test_protocols import OUTSIDE, WARNED, WITHIN, _kinds, _triton_inputs

    base, headers = served
    client = triton.InferenceServerClient(url=base.removeprefix("http://"))
    try:
        for binary in (True, False):
            inputs = _triton_inputs(binary, pd.DataFrame([WITHIN, OUTSIDE]))
            result = client.infer("churn", inputs, headers=dict(headers))
            assert result.as_numpy("predict").shape == (2,)
            warned = json.loads(result.get_response()["parameters"]["mlgate_warnings"])
            assert _kinds(warned) == WARNED
    finally:
        client.close()
