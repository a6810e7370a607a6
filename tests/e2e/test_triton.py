"""Triton's own HTTP client (tritonclient, with its defaults) talking to `mlgate serve` over a
real socket, unmodified: a process, because the client is one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton

from tests.e2e.helpers import admin_key, quickstarted, running_server
from tests.integration.test_protocols import FRAME, RECORDS


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("triton") / "home"
    quickstarted(home)
    headers = {"Authorization": f"Bearer {admin_key(home, 'predict', 'read')}"}
    with running_server(home) as base:
        yield base, headers


def test_oip_tabular_infer_through_tritons_own_client(served: tuple[str, dict[str, str]]) -> None:
    base, headers = served
    client = triton.InferenceServerClient(url=base.removeprefix("http://"))
    try:
        assert client.is_server_live(headers=headers) and client.is_server_ready(headers=headers)
        assert client.is_model_ready("churn", headers=headers)
        inputs = []
        for name, column in FRAME.items():
            if not pd.api.types.is_numeric_dtype(column):
                values = np.array([("" if v is None else v) for v in column], dtype=object)
                tensor = triton.InferInput(name, [len(values)], "BYTES")
            else:
                values = column.to_numpy(dtype="float64")
                tensor = triton.InferInput(name, [len(values)], "FP64")
            tensor.set_data_from_numpy(values, binary_data=False)
            inputs.append(tensor)
        # total_charges holds NaN, which JSON cannot carry: send that column without it.
        inputs[2] = triton.InferInput("total_charges", [8], "FP64")
        inputs[2].set_data_from_numpy(
            FRAME["total_charges"].fillna(0.0).to_numpy(), binary_data=False
        )
        outputs = [triton.InferRequestedOutput("predict", binary_data=False)]
        result = client.infer("churn", inputs, outputs=outputs, request_id="req-7", headers=headers)
        response = result.get_response()
        assert response["id"] == "req-7" and response["model_version"] == "1"
        predicted = result.as_numpy("predict")
        assert predicted is not None and predicted.shape == (8,)
        rows = [
            dict(r, total_charges=r["total_charges"] if r["total_charges"] is not None else 0.0)
            for r in RECORDS
        ]
        ours = httpx.post(
            f"{base}/v1/models/churn/predict", headers=headers, json={"rows": rows}
        ).json()
        assert predicted.tolist() == ours["predictions"]
    finally:
        client.close()
