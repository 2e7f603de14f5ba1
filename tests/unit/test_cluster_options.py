"""Dask options: resources, the cluster asked for, torch threads per host (no cluster needed)."""

from __future__ import annotations

import pytest

from ghosttui.cli.options import cluster_spec
from ghosttui.errors import ClusterError

cluster = pytest.importorskip("ghosttui.inference.cluster")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("GPU=1", {"GPU": 1.0}), ("GPU=2, MEMORY=8e9", {"GPU": 2.0, "MEMORY": 8e9}), ("", {})],
)
def test_resources_parse(text, expected):
    assert cluster.parse_resources(text) == expected


@pytest.mark.parametrize("text", ["GPU", "GPU=", "=1", "GPU=0", "GPU=-1", "GPU=one"])
def test_bad_resources_are_one_line_errors(text):
    with pytest.raises(ClusterError, match="--resources must look like GPU=1"):
        cluster.parse_resources(text)


def test_the_cluster_asked_for():
    assert cluster_spec(None, None) is None
    spec = cluster_spec(3, None, resources="GPU=1", torch_threads=2, dashboard=False)
    assert (spec.workers, spec.resources, spec.torch_threads, spec.dashboard) == (
        3,
        {"GPU": 1.0},
        2,
        None,
    )
    assert cluster_spec(None, "tcp://127.0.0.1:8786").scheduler == "tcp://127.0.0.1:8786"
    with pytest.raises(ClusterError, match="not both"):
        cluster_spec(2, "tcp://127.0.0.1:8786")
    with pytest.raises(ClusterError, match="need --workers or --scheduler"):
        cluster_spec(None, None, torch_threads=2)
    with pytest.raises(ClusterError, match="--torch-threads must be at least 1"):
        cluster_spec(1, None, torch_threads=0)


class FakeClient:
    """What torch_threads_by_host asks of a client: the workers and their hosts' cores."""

    def __init__(self, workers, cores):
        self.workers = workers
        self.cores = cores

    def scheduler_info(self):
        return {"workers": self.workers}

    def run(self, function):
        return self.cores


def test_torch_threads_share_each_hosts_cores_among_its_dask_threads():
    workers = {
        "tcp://10.0.0.1:1001": {"nthreads": 1},
        "tcp://10.0.0.1:1002": {"nthreads": 1},
        "tcp://10.0.0.2:1001": {"nthreads": 4},
        "tcp://10.0.0.3:1001": {"nthreads": 8},
    }
    cores = {
        "tcp://10.0.0.1:1001": 16,
        "tcp://10.0.0.1:1002": 16,
        "tcp://10.0.0.2:1001": 16,
        "tcp://10.0.0.3:1001": 4,
    }
    threads = cluster.torch_threads_by_host(FakeClient(workers, cores), None)
    assert threads == {"10.0.0.1": 8, "10.0.0.2": 4, "10.0.0.3": 1}
    assert cluster.torch_threads_by_host(FakeClient(workers, cores), 3) == {
        "10.0.0.1": 3,
        "10.0.0.2": 3,
        "10.0.0.3": 3,
    }
