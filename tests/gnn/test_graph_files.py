"""read_graph_files and `riskgraph benchmark files`: the documented format, end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnn import GraphDataError, read_graph_files
from serving.cli import main
from serving.commands import benchmark as benchmark_command

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
    assert ("| split | val ROC-AUC | test ROC-AUC | val AUPRC | test AUPRC | best epoch(s) | "
            "wall s | CPU s |") in printed and "in_degree" in printed


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


# -- real public graphs (issue 18): signed weights, one split column per split, AUPRC, --------
# -- the test predictions, workers that suit the cores ----------------------------------------
def _rated(planted) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings from -10 to 10 as edge weights (a trust network), and two splits given as one
    text column each."""
    nodes, edges = _tables(planted)
    rng = np.random.default_rng(2)
    edges = edges.assign(weight=rng.integers(-10, 11, len(edges)).astype(float))
    nodes = nodes.drop(columns=["f0", "f1"])
    for k in range(2):
        nodes[f"split_{k}"] = rng.choice(["train", "train", "val", "test"], len(nodes))
    return nodes, edges


def test_signed_weights_split_columns_auprc_and_predictions_through_the_cli(
        planted, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    nodes, edges = _rated(planted)
    nodes.to_csv(tmp_path / "n.csv", index=False)
    edges.to_csv(tmp_path / "e.csv", index=False)
    out, preds = tmp_path / "r.json", tmp_path / "p.csv"
    with caplog.at_level(logging.WARNING, logger="gnn.benchmarks.graph_files"):
        rc = main(["benchmark", "files", "--nodes", str(tmp_path / "n.csv"), "--edges",
                   str(tmp_path / "e.csv"), "--json", str(out), "--predictions", str(preds),
                   "--workers", "1", *FAST])
    assert rc == 0
    assert "signed weights do not weight the neighbour mean" in caplog.text
    printed = capsys.readouterr().out
    assert "test AUPRC" in printed and "running 2 split(s) x 1 seed(s)" in printed
    result = json.loads(out.read_text())
    assert len(result["splits"]) == 2 and 0 < result["test_auprc_mean"] <= 1
    assert all(0 < s["test_auprc"] <= 1 for s in result["splits"])
    assert "all_weight_mean" in printed
    written = pd.read_csv(preds)
    assert list(written.columns) == ["id", "split", "label", "score"]
    for k in range(2):
        test_ids = set(nodes.loc[nodes[f"split_{k}"] == "test", "id"])
        assert set(written.loc[written["split"] == k, "id"]) == test_ids
    by_id = nodes.set_index("id")["label"]
    assert (written["label"].astype(str) == written["id"].map(by_id).astype(str)).all()
    assert written["score"].between(0, 1).all()
    # the score ranks as the printed test ROC-AUC says
    from sklearn.metrics import roc_auc_score

    first = written[written["split"] == 0]
    assert roc_auc_score(first["label"], first["score"]) == pytest.approx(
        result["splits"][0]["test"], abs=1e-9)


def test_weighting_by_signed_weights_is_refused_before_any_work(
        planted, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes, edges = _rated(planted)
    nodes.to_parquet(tmp_path / "n.parquet")
    edges.to_parquet(tmp_path / "e.parquet")
    rc = main(["benchmark", "files", "--nodes", str(tmp_path / "n.parquet"), "--edges",
               str(tmp_path / "e.parquet"), "--edge-weight", "mean", *FAST])
    err = capsys.readouterr()
    assert rc == 2 and "running" not in err.out
    line = err.err.strip()
    assert "\n" not in line and "--edge-weight features" in line and "min -10" in line
    with pytest.raises(SystemExit, match="--validation-only"):
        main(["benchmark", "files", "--nodes", str(tmp_path / "n.parquet"), "--edges",
              str(tmp_path / "e.parquet"), "--predictions", str(tmp_path / "p.csv"),
              "--validation-only", *FAST])


def test_split_text_columns_are_read_one_split_each(planted) -> None:
    nodes, edges = _rated(planted)
    graph = read_graph_files(nodes, edges)
    assert graph.num_splits == 2
    for k in range(2):
        train, val, test = (m.numpy() for m in graph.split(k))
        column = nodes[f"split_{k}"].to_numpy()
        assert (train == (column == "train")).all() and (test == (column == "test")).all()
    with pytest.raises(GraphDataError, match="not both"):
        read_graph_files(nodes.assign(train_0=True), edges)
    with pytest.raises(GraphDataError, match="split_k"):
        read_graph_files(nodes.rename(columns={"split_1": "split_2"}), edges)
    with pytest.raises(GraphDataError, match="'split_0'"):
        read_graph_files(nodes.assign(split_0="holdout"), edges)


@pytest.mark.parametrize(("cores", "splits", "asked", "expected"), [
    (2, 10, (None, None), (2, 1)), (2, 1, (None, None), (1, 2)), (16, 3, (None, None), (3, 1)),
    (8, 10, (None, 4), (2, 4)), (8, 10, (1, None), (1, 8)), (8, 10, (2, 3), (2, 3))])
def test_workers_and_threads_suit_the_cores(monkeypatch: pytest.MonkeyPatch, cores: int,
                                            splits: int, asked: tuple[int | None, int | None],
                                            expected: tuple[int, int]) -> None:
    monkeypatch.setattr(benchmark_command.os, "sched_getaffinity", lambda pid: set(range(cores)))
    args = benchmark_command.argparse.Namespace(device="cpu", workers=asked[0], threads=asked[1])
    assert benchmark_command._parallelism(args, splits) == expected
