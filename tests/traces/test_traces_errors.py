"""Corrupted user files raise UserError naming the file and the row."""

import gzip
import json

import pytest

from warmsim.sim.errors import UserError
from warmsim.traces import registry
from warmsim.traces.builders import build_workload

GOOD_CSV = [
    "TIMESTAMP,ContextTokens,GeneratedTokens",
    "2023-11-16 18:17:03.9799600,4808,10",
    "2023-11-16 18:17:04.0319600,3180,8",
    "2023-11-16 18:17:05.0000000,100,20",
    "2023-11-16 18:17:06.5000000,200,30",
]


def _write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("\n".join(lines) + ("\n" if lines else ""))
    return p


def test_good_csv_loads_and_builds(tmp_path):
    p = _write(tmp_path, "mine.csv", GOOD_CSV)
    df = registry.load_trace(str(p))
    assert len(df) == 4 and df["model"].iloc[0] == "mine"
    wl = build_workload({"kind": "mapped", "trace": str(p), "duration_s": 2.0}, ["a"], seed=0)
    assert len(wl) == 3


@pytest.mark.parametrize("lines,match", [
    (GOOD_CSV[:3] + ["2023-11-16 18:17:05.0000000,100"], r"row 3 \(line 4\): GeneratedTokens is missing"),
    (GOOD_CSV[:2] + ["2023-11-16 18:17:04.0319600,3180,8,9"] + GOOD_CSV[3:], r"row 2 \(line 3\)"),
    (["TIMESTAMP,GeneratedTokens,ContextToken"] + GOOD_CSV[1:], r"row 0 \(header.*missing column"),
    ([GOOD_CSV[0], "4808,2023-11-16 18:17:03.9799600,10", "3180,2023-11-16 18:17:04.0319600,8"],
     r"row 1 \(line 2\): ContextTokens is not a finite number"),
    (GOOD_CSV[:2] + ["2023-11-16 18:17:04.0319600,abc,8"], r"row 2 \(line 3\): ContextTokens is not a finite number"),
    (GOOD_CSV[:2] + ["2023-11-16 18:17:04.0319600,-5,8"], r"row 2 \(line 3\): ContextTokens must be >= 0"),
    (GOOD_CSV[:2] + ["2023-11-16 18:17:04.0319600,NaN,8"], r"row 2 \(line 3\): ContextTokens"),
    ([GOOD_CSV[0], GOOD_CSV[3], GOOD_CSV[1], GOOD_CSV[2]], r"row 2 \(line 3\): TIMESTAMP goes backwards.*sort=True"),
    ([GOOD_CSV[0]], r"row 1: the file has no data rows"),
    ([], r"row 1: the file is empty"),
    (GOOD_CSV[:2] + ["2023-11-16 18:1"], r"row 2 \(line 3\)"),
])
def test_bad_csv(tmp_path, lines, match):
    p = _write(tmp_path, "bad.csv", lines)
    with pytest.raises(UserError, match=match) as exc:
        registry.load_trace(str(p))
    assert str(exc.value).startswith("bad.csv: ")


def test_reordered_header_is_fine(tmp_path):
    p = _write(tmp_path, "reordered.csv", ["ContextTokens,TIMESTAMP,GeneratedTokens", "4808,2023-11-16 18:17:03.97,10"])
    assert registry.load_trace(str(p))["prompt_tokens"].tolist() == [4808]


def test_shuffled_csv_sorts_when_asked(tmp_path):
    p = _write(tmp_path, "shuf.csv", [GOOD_CSV[0], GOOD_CSV[3], GOOD_CSV[1], GOOD_CSV[2]])
    df = registry.load_trace(str(p), sort=True)
    assert list(df["prompt_tokens"]) == [4808, 3180, 100]


def test_gzipped_csv(tmp_path):
    p = tmp_path / "z.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("\n".join(GOOD_CSV) + "\n")
    assert len(registry.load_trace(str(p))) == 4


GOOD_JSONL = [json.dumps({"timestamp": t, "input_length": 100 + t, "output_length": 5, "hash_ids": [t]})
              for t in (0, 10, 20, 3000)]


@pytest.mark.parametrize("lines,match", [
    (GOOD_JSONL[:2] + [GOOD_JSONL[2][:20]], r"row 3 \(line 3\): not valid JSON"),
    (GOOD_JSONL[:1] + ['{"timestamp": 5, "input_length": "abc", "output_length": 3}'], r"line 2\): input_length is not a number"),
    (GOOD_JSONL[:1] + ['{"ts": 5, "input_length": 3, "output_length": 3}'], r"line 2\): missing field"),
    (GOOD_JSONL[:1] + ['{"timestamp": 5, "input_length": -3, "output_length": 3}'], r"line 2\): input_length must be >= 0"),
    ([GOOD_JSONL[1], GOOD_JSONL[0]], r"row 2 \(line 2\): timestamp goes backwards"),
    ([], r"line 1: the file has no data rows"),
])
def test_bad_jsonl(tmp_path, lines, match):
    p = _write(tmp_path, "bad.jsonl", lines)
    with pytest.raises(UserError, match=match) as exc:
        registry.load_trace(str(p))
    assert str(exc.value).startswith("bad.jsonl: ")


def test_good_jsonl(tmp_path):
    p = _write(tmp_path, "ok.jsonl", GOOD_JSONL)
    df = registry.load_trace(str(p))
    assert df["arrival_s"].tolist() == [0.0, 0.01, 0.02, 3.0]


def test_bad_counts_file(tmp_path):
    from warmsim.traces import azure

    p = _write(tmp_path, "counts.csv", ["Time,TIMESTAMP", "2024-05-10 00:00:00,5", "2024-05-10 00:00:10,x"])
    with pytest.raises(UserError, match=r"counts.csv: row 2 \(line 3\): TIMESTAMP"):
        azure.load_azure2024_counts(p)
    p = _write(tmp_path, "counts.csv", ["Time,TIMESTAMP", "2024-05-10 00:00:00,5", "2024-05-10 00:00:20,4",
                                        "2024-05-10 00:00:30,4"])
    with pytest.raises(UserError, match=r"counts.csv: row 3 \(line 4\): Time must advance"):
        azure.load_azure2024_counts(p)


def test_bad_servegen_client(tmp_path):
    from warmsim.traces import servegen

    d = tmp_path / "sg"
    d.mkdir()
    (d / "chunk-1-trace.csv").write_text("0,1.0,1.0,Gamma,0.5,2.0\n600,1.0,1.0,Poisson,0.5,2.0\n")
    with pytest.raises(UserError, match=r"chunk-1-trace.csv: row 2 \(line 2\): pattern"):
        servegen.load_servegen(d)
