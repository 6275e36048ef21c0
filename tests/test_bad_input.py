"""Bad input: every case stops with an error that names the file, line or key and what was expected, and leaves
no partial output behind.

The cases tested here, plus the reader and scorer cases tested next to their modules (``ELSEWHERE``, checked
below to still exist), make the list in the README's "Bad input" section.
"""

from __future__ import annotations

import copy
import importlib
import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from prefixtune.cli import main
from prefixtune.data.download import download
from prefixtune.data.errors import DataError
from prefixtune.data.prepare import prepare
from prefixtune.data.records import Pair, write_jsonl
from prefixtune.grid import expand_runs
from prefixtune.methods import build_method
from prefixtune.metrics.score import score_files
from prefixtune.models.loading import load_tokenizer
from prefixtune.training.train import (
    CheckpointMismatchError,
    NonFiniteLossError,
    TimeBudgetExceeded,
    train_run,
)
from tiny_models import load_tiny, save_tiny_model

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

# case -> the test that covers it in its module's test file
ELSEWHERE = {
    "malformed E2E CSV row": "test_data_e2e.py::test_bad_csv_names_file_and_line",
    "malformed src1 line": "test_data_e2e.py::test_bad_src1_source_names_file_and_line",
    "data file without a single pair": "test_data_e2e.py::test_file_without_pairs_is_an_error",
    "malformed WebNLG XML entry": "test_data_webnlg.py::test_bad_xml_names_file_and_entry",
    "malformed WebNLG JSON entry": "test_data_webnlg.py::test_bad_json_names_file_and_entry",
    "malformed DART JSON record": "test_data_dart.py::test_bad_json_names_file_and_entry",
    "malformed prepared JSONL record": "test_data_records.py::test_bad_line_names_file_and_line",
    "non-UTF-8 data file": "test_data_records.py::test_non_utf8_file_names_the_line",
    "XSUM source/target line mismatch": (
        "test_data_xsum.py::test_line_count_mismatch_and_empty_lines_name_file_and_line"
    ),
    "truncated XSUM tarball": "test_data_xsum.py::test_tarball_without_the_split_and_a_broken_archive_are_errors",
    "E2E hypotheses count != references": "test_metrics_e2e.py::test_count_mismatch_names_both_files",
    "WebNLG hypotheses count != entries": "test_metrics_webnlg.py::test_hypothesis_count_must_equal_entries",
    "DART references missing": "test_metrics_dart.py::test_reference_loading_errors",
    "subset larger than the dataset": (
        "test_subsample.py::test_a_subset_larger_than_the_data_is_an_error_naming_the_file"
    ),
    "training text longer than the context": "test_train.py::test_too_long_text_is_refused_with_its_line",
    "no java for METEOR": "test_metrics_webnlg.py::test_missing_java_is_a_clear_error",
}


def test_the_cases_tested_elsewhere_still_exist():
    for case, node in ELSEWHERE.items():
        file, name = node.split("::")
        module = importlib.import_module(file.removesuffix(".py"))
        assert callable(getattr(module, name, None)), f"{case}: {node} is gone"


# --- config ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())


def _validated(config: dict) -> None:
    validate(copy.deepcopy(config), str(SCHEMA))


def test_the_shipped_configs_are_valid(demo_config):
    _validated(demo_config)
    _validated(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(trainig={}), r"'trainig' was unexpected"),
        (lambda c: c["training"].update(checkpoint_every="often"), r"'often' is not of type 'integer'"),
        (lambda c: c["decoding"].update(num_beams=0), r"0 is less than the minimum of 1"),
        (lambda c: c["methods"]["prefix"].update(prefix_length=0), r"0 is less than the minimum of 1"),
        (lambda c: c["methods"]["prefix"].update(kind="lora"), r"'lora' is not one of"),
        (lambda c: c["artifacts"]["table1"].update(split="valid"), r"'valid' is not one of"),
        (
            lambda c: c["decoding_by_dataset"]["xsum"]["by_method"].pop("finetune"),
            r"'finetune' is a required property",
        ),
    ],
    ids=[
        "unknown key",
        "wrong type",
        "beam 0",
        "prefix length 0",
        "unknown method kind",
        "unknown split",
        "XSUM decoding of a method missing",
    ],
)
def test_schema_names_the_key_and_what_was_expected(demo_config, edit, message):
    config = copy.deepcopy(demo_config)
    edit(config)
    with pytest.raises(WorkflowError) as err:
        _validated(config)
    assert re.search(message, str(err.value)), str(err.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dataset", "cnndm", r"row 'FINE-TUNE' uses unknown dataset 'cnndm'; expected one of .*e2e"),
        ("method", "lora", r"row 'FINE-TUNE' uses unknown method 'lora'; expected one of .*prefix"),
        ("model", "gpt3", r"row 'FINE-TUNE' uses unknown model 'gpt3'; expected one of .*tiny-gpt2"),
    ],
)
def test_unknown_dataset_method_or_model_in_an_artifact(demo_config, field, value, message):
    config = copy.deepcopy(demo_config)
    row = config["artifacts"]["table1"]["rows"][0]
    if field == "dataset":
        row["datasets"] = [value]
    else:
        row[field] = value
    with pytest.raises(KeyError) as err:
        expand_runs(config)
    assert re.search(message, err.value.args[0]), err.value.args[0]


def test_missing_hyperparameters_name_the_config_key(demo_config):
    config = copy.deepcopy(demo_config)
    del config["training"]["hparams"]["prefix"]["webnlg"]
    with pytest.raises(KeyError, match=r"training\.hparams\.prefix\.webnlg is missing"):
        expand_runs(config)


# --- data -----------------------------------------------------------------------------------------------------
def test_a_missing_data_file_is_named_and_nothing_is_written(tmp_path):
    good = tmp_path / "src1_train.txt"
    good.write_text("name : A || A is here .\n")
    out = tmp_path / "prepared"
    raw = {"train": good, "dev": good, "test": tmp_path / "src1_test.txt"}
    with pytest.raises(DataError, match=r"src1_test.txt: file: the test file of e2e does not exist"):
        prepare("e2e", raw, out, {})
    assert not out.exists() and not out.with_name("prepared.tmp").exists()


def test_an_empty_data_file_is_named_and_no_partial_output_is_left(tmp_path):
    good = tmp_path / "src1_train.txt"
    good.write_text("name : A || A is here .\nname : B || B is here .\n")
    empty = tmp_path / "src1_test.txt"
    empty.write_text("")
    out = tmp_path / "prepared"
    with pytest.raises(
        DataError, match=r"src1_test.txt: file: expected 'SOURCE\|\|TARGET' lines .*found none"
    ):
        prepare("e2e", {"train": good, "dev": good, "test": empty}, out, {})
    assert not out.exists() and not out.with_name("prepared.tmp").exists()


def test_an_mr_with_no_fields_names_the_line(tmp_path):
    path = tmp_path / "src1_train.txt"
    path.write_text("name : A || A is here .\n || nothing to describe .\n")
    with pytest.raises(DataError, match=r"src1_train.txt: line 2: expected a source 'field : value"):
        prepare("e2e", {"train": path, "dev": path, "test": path}, tmp_path / "out", {})


def _outputs_and_refs(folder: Path, hyps: str, refs: str) -> tuple[Path, Path]:
    """``test.hyp.txt`` and ``test.refs.txt`` with these contents."""
    (folder / "test.hyp.txt").write_text(hyps)
    (folder / "test.refs.txt").write_text(refs)
    return folder / "test.hyp.txt", folder / "test.refs.txt"


def test_references_missing_for_an_instance_name_the_line(tmp_path):
    hyps, refs = _outputs_and_refs(tmp_path, "A is here .\nB is here .\n", "A is here .\n\n\nB is here .\n")
    with pytest.raises(ValueError, match=r"test.refs.txt: line 3: two empty lines in a row"):
        score_files("e2e", hyps, refs)


# --- hypotheses -----------------------------------------------------------------------------------------------
def test_an_empty_hypothesis_file_is_refused_by_name(tmp_path):
    hyps, refs = _outputs_and_refs(tmp_path, "", "A is here .\n")
    with pytest.raises(ValueError, match=r"test.hyp.txt: empty hypothesis file \(0 outputs\)"):
        score_files("e2e", hyps, refs)
    with pytest.raises(FileNotFoundError, match=r"missing.hyp.txt: hypothesis file not found"):
        score_files("xsum", tmp_path / "missing.hyp.txt", refs)


def test_xsum_hypothesis_count_must_match(tmp_path):
    hyps, refs = _outputs_and_refs(tmp_path, "one\n", "one\ntwo\n")
    with pytest.raises(ValueError, match=r"test.hyp.txt has 1 lines but .*test.refs.txt has 2"):
        score_files("xsum", hyps, refs)


def test_the_cli_prints_one_clear_line_and_writes_nothing(tmp_path, capsys):
    hyps, refs = _outputs_and_refs(tmp_path, "", "A is here .\n")
    out = tmp_path / "scores.json"
    with pytest.raises(SystemExit) as exit_code:
        main(["score", "--dataset", "e2e", "--hyp", str(hyps), "--refs", str(refs), "--out", str(out)])
    assert exit_code.value.code == 1
    err = capsys.readouterr().err
    assert "prefixtune score: error:" in err and "empty hypothesis file" in err and "Traceback" not in err
    assert not out.exists()


# --- downloads ------------------------------------------------------------------------------------------------
def test_a_checksum_mismatch_names_file_expected_and_actual_and_keeps_nothing(tmp_path):
    source = tmp_path / "served.txt"
    source.write_text("the official file\n")
    out = tmp_path / "raw" / "src1_test.txt"
    wrong = "0" * 64
    with pytest.raises(ValueError) as err:
        download(source.as_uri(), out, wrong)
    message = str(err.value)
    assert "src1_test.txt" in message and f"expected {wrong}" in message and "got " in message
    assert not out.exists() and list(out.parent.iterdir()) == []
    digest = download(source.as_uri(), out, None)  # unpinned: recorded next to the file
    assert (
        out.read_text() == "the official file\n"
        and digest in (out.parent / "src1_test.txt.sha256").read_text()
    )


def test_a_raw_file_changed_since_its_download_is_not_parsed(tmp_path):
    source = tmp_path / "served.txt"
    source.write_text("name : A || A is here .\n")
    raw = tmp_path / "raw" / "src1_train.txt"
    download(source.as_uri(), raw, None)
    raw.write_text("name : A || A is here .\nname : B || cut")  # changed (or cut) after the download
    with pytest.raises(
        DataError, match=r"src1_train.txt: file: sha256 \w+ differs from the \w+ recorded at download"
    ):
        prepare("e2e", {"train": raw, "dev": raw, "test": raw}, tmp_path / "out", {})
    assert not (tmp_path / "out").exists()


# --- models and methods ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize(
    ("kind", "length", "message"),
    [
        ("prefix", 0, r"prefix_length 0: expected at least 1"),
        ("prefix", 10_000, r"prefix_length 10000 is beyond the model's context of \d+ positions"),
        ("emb_prefix", 0, r"prefix_length 0: expected at least 1"),
        ("infix", -1, r"prefix_length -1: expected a positive integer"),
    ],
)
def test_prefix_length_out_of_range(model_dir, kind, length, message):
    tokenizer, model = load_tiny(model_dir)
    settings = {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 8, "prefix_length": length}
    with pytest.raises(ValueError, match=message):
        build_method(kind, model, settings, tokenizer)


def test_a_tokenizer_without_the_separator_token_is_refused(model_dir, tmp_path):
    broken = tmp_path / "broken"
    tokenizer, model = load_tiny(model_dir)
    tokenizer.eos_token = "<eos>"
    tokenizer.save_pretrained(broken)
    model.save_pretrained(broken)
    with pytest.raises(ValueError, match=r"broken: expected eos token '<\|endoftext\|>', found '<eos>'"):
        load_tokenizer(broken)


# --- training -------------------------------------------------------------------------------------------------
def _spec(lr: float = 1e-2) -> dict:
    return {
        "run_id": "toy-prefix",
        "dataset": "e2e",
        "model": "tiny",
        "method": "prefix",
        "method_settings": {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 8, "prefix_length": 2},
        "hparams": {"learning_rate": lr, "epochs": 2, "batch_size": 3, "seed": 7, "max_grad_norm": 1.0},
    }


@pytest.fixture()
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    write_jsonl(path, [Pair(f"name : Place {i}", f"Place {i} is here . ") for i in range(9)])
    return path


def test_a_checkpoint_from_other_settings_is_refused(model_dir, train_file, tmp_path, monkeypatch):
    calls = {"n": 0}

    def clock():  # out of time after the first optimizer step: a checkpoint is left behind
        calls["n"] += 1
        return 1e9 if calls["n"] > 2 else 0.0

    monkeypatch.setattr("prefixtune.training.train._now", clock)
    ckpt, out = tmp_path / "ck", tmp_path / "trained"
    with pytest.raises(TimeBudgetExceeded):
        train_run(_spec(), train_file, model_dir, out, tmp_path / "run.json", ckpt, 100.0)
    monkeypatch.undo()
    with pytest.raises(
        CheckpointMismatchError, match=r"ck/checkpoint.pt: this checkpoint was written by a run with"
    ):
        train_run(_spec(lr=5e-3), train_file, model_dir, out, tmp_path / "run.json", ckpt)
    assert not out.exists() and not (tmp_path / "run.json").exists()
    assert (ckpt / "checkpoint.pt").exists()  # kept for the run it belongs to


def test_a_non_finite_loss_stops_with_the_step_and_value(model_dir, train_file, tmp_path, monkeypatch):
    import prefixtune.training.train as train_module

    real = train_module.lm_loss
    calls = {"n": 0}

    def loss_going_nan(logits, labels, mode):
        calls["n"] += 1
        value = real(logits, labels, mode)
        return value * math.nan if calls["n"] == 3 else value

    monkeypatch.setattr(train_module, "lm_loss", loss_going_nan)
    out = tmp_path / "trained"
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at optimizer step 3/6 \(epoch 1, batch 3\)"):
        train_run(_spec(), train_file, model_dir, out, tmp_path / "run.json", tmp_path / "ck")
    assert not out.exists() and not (tmp_path / "run.json").exists()


def test_an_infinite_loss_is_caught_too(model_dir, train_file, tmp_path, monkeypatch):
    import prefixtune.training.train as train_module

    monkeypatch.setattr(train_module, "lm_loss", lambda logits, labels, mode: logits.sum() * torch.inf)
    with pytest.raises(NonFiniteLossError, match=r"loss is (inf|-inf|nan) at optimizer step 1/"):
        train_run(_spec(), train_file, model_dir, tmp_path / "t", tmp_path / "run.json", tmp_path / "ck")
