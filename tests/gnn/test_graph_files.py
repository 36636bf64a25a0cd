"""read_graph_files and `riskgraph benchmark files`: the documented format, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnn import GraphDataError, read_graph_files
from serving.cli import main

FAST = ["--hidden", "16", "--layers", "2", "--epochs", "60", "--eval-every", "2",
        "--patience", "30", "--lr", "0.01", "--threads", "1"]


def _tables(planted) -> tuple[pd.DataFrame, pd.DataFrame]:
    x, y, src, dst = planted
    ids = [f"u{i:03d}" for i in range(len(y))]
    nodes = pd.DataFrame({"id": ids, "label": y, "f0": x[:, 0], "f1": x[:, 1]})
    rng = np.random.default_rng(0)
    edges = pd.DataFrame({
        "source": [ids[i] for i in src], "target": [ids[i] for i in dst],
        "weight": rng.random(len(src)) + 0.5,
        "time": pd.to_datetime(1_700_000_000 + rng.integers(0, 86_400 * 30, len(src)), unit="s"),
        "type": rng.choice(["shares_device", "paid"], len(src)),
    })
    return nodes, edges


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip_through_the_cli(planted, tmp_path: Path, suffix: str) -> None:
    nodes, edges = _tables(planted)
    node_path, edge_path = tmp_path / f"nodes{suffix}", tmp_path / f"edges{suffix}"
    out = tmp_path / "result.json"
    if suffix == ".csv":
        nodes.to_csv(node_path, index=False)
        edges.to_csv(edge_path, index=False)
    else:
        nodes.to_parquet(node_path)
        edges.to_parquet(edge_path)
    rc = main(["benchmark", "files", "--nodes", str(node_path), "--edges", str(edge_path),
               "--num-splits", "2", "--json", str(out), *FAST])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["metric"] == "roc_auc" and len(result["splits"]) == 2
    assert result["test_mean"] > 0.85, result
    assert result["config"]["model"]["hidden_channels"] == 16


def test_featureless_directed_graph_gets_edge_features(planted, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    nodes, edges = _tables(planted)
    nodes = nodes[["id", "label"]].assign(split=np.resize(["train", "train", "val", "test"],
                                                          len(nodes)))
    nodes.to_parquet(tmp_path / "n.parquet")
    edges.to_parquet(tmp_path / "e.parquet")
    graph = read_graph_files(tmp_path / "n.parquet", tmp_path / "e.parquet", directed=True)
    assert graph.relation_names == ("in", "out") and graph.num_splits == 1
    assert "in_degree" in graph.feature_names and "out_time_span" in graph.feature_names
    assert "in_type_paid_degree" in graph.feature_names
    np.testing.assert_allclose(graph.x.mean(0).numpy(), 0, atol=1e-4)
    train, val, test = graph.split(0)
    assert int(train.sum()) == (nodes["split"] == "train").sum()
    rc = main(["benchmark", "files", "--nodes", str(tmp_path / "n.parquet"),
               "--edges", str(tmp_path / "e.parquet"), "--directed", *FAST])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| split | val ROC-AUC | test ROC-AUC | best epoch(s) | wall s | CPU s |" in printed and "in_degree" in printed


def test_multi_split_columns_and_multiclass_labels(planted, tmp_path: Path) -> None:
    nodes, edges = _tables(planted)
    rng = np.random.default_rng(1)
    nodes["label"] = np.where(nodes["label"] == 1, "fraud",
                              rng.choice(["good", "late"], len(nodes)))
    nodes.loc[:4, "label"] = None
    for k in range(2):
        part = rng.integers(0, 3, len(nodes))
        for j, name in enumerate(("train", "val", "test")):
            nodes[f"{name}_{k}"] = part == j
    graph = read_graph_files(nodes, edges)
    assert graph.num_splits == 2 and graph.num_classes == 3
    assert graph.class_names == ("fraud", "good", "late")
    assert int(graph.y[:5].max()) == -1
    assert not bool(graph.split(1)[0][:5].any())


def test_bad_files_are_named(planted) -> None:
    nodes, edges = _tables(planted)
    with pytest.raises(GraphDataError, match="not node ids"):
        read_graph_files(nodes, edges.assign(target="ghost"))
    with pytest.raises(GraphDataError, match="not numeric"):
        read_graph_files(nodes.assign(city="x"), edges)
    with pytest.raises(GraphDataError, match="duplicate node id"):
        read_graph_files(pd.concat([nodes, nodes.iloc[:1]]), edges)
    with pytest.raises(GraphDataError, match="no 'label' column"):
        read_graph_files(nodes.drop(columns="label"), edges)
