"""DART's model-based metrics (MoverScore, BERTScore, BLEURT) on tiny random-weight models built offline.

Faithfulness: independent re-computations here, and — when installed — the reference implementations themselves
(``bert-score`` 0.3.13 and ``moverscore`` 1.0.3's ``moverscore_v2``, patched only to run on CPU / transformers 5).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import defaultdict
from math import log
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from prefixtune.cli import main as cli_main
from prefixtune.metrics.bertscore import BertScorer
from prefixtune.metrics.bleurt import (
    BleurtScorer,
    bert_config_from_tf,
    state_dict_from_tf,
    tf_to_torch_name,
)
from prefixtune.metrics.dart_model_metrics import score_dart_model_metrics, validate_spec
from prefixtune.metrics.model_common import MetricModelUnavailable, resolve_source
from prefixtune.metrics.moverscore import MoverScorer
from prefixtune.metrics.score import score_files
from prefixtune.models.metric_models import MetricModelRecipe, build_metric_models

REFS = [
    "the eagle is a coffee shop near burger king in the riverside area .",
    "john smith was born in london and works as a pilot",
    "alpha , beta and gamma !",
    "the waterman serves cheap english food",
]
HYPS = [
    "the eagle is a cheap coffee shop in riverside near burger king",
    "john smith , born in london , is a pilot",
    "alpha beta",
    "cheap english food is served at the waterman restaurant in the city centre",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """The three tiny models, built through the CLI; returns the ``--model-metrics`` block it writes."""
    out = tmp_path_factory.mktemp("metric_models")
    cli_main(["metric-models", "--out-dir", str(out), "--recipe", '{"corpus_size": 2000}'])
    return json.loads((out / "model_metrics.json").read_text())


@pytest.fixture(scope="module")
def bert(models) -> BertScorer:
    return BertScorer.load(models["bertscore"]["model"], models["bertscore"]["layer"], device="cpu")


@pytest.fixture(scope="module")
def mover(models) -> MoverScorer:
    return MoverScorer.load(models["moverscore"]["model"], device="cpu")


@pytest.fixture(scope="module")
def bleurt(models) -> BleurtScorer:
    return BleurtScorer.load(models["bleurt"]["checkpoint"], device="cpu")


def test_tiny_models_are_deterministic(models, tmp_path):
    build_metric_models(tmp_path, MetricModelRecipe(corpus_size=2000))
    first = Path(models["bleurt"]["checkpoint"]).parent
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 15
    for rel in files:
        if rel.name != "model_metrics.json":  # holds the output paths
            assert (first / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_model_sources(tmp_path):
    assert resolve_source(str(tmp_path)) == str(tmp_path)
    assert resolve_source("roberta-large") == "roberta-large"  # a hub id, tried by from_pretrained
    for missing in (str(tmp_path / "absent"), "./absent-model", "~/absent-model"):
        with pytest.raises(MetricModelUnavailable, match="no such model directory"):
            resolve_source(missing)


# --- BERTScore ----------------------------------------------------------------------------------------------
def test_bertscore_identical_is_one_and_different_below(bert):
    same = bert.score(REFS, [[r] for r in REFS])
    assert torch.allclose(same, torch.ones_like(same), atol=1e-5)
    other = bert.score(HYPS, [[r] for r in REFS])
    assert (other[:, 2] < 0.999).all() and (other[:, 2] > 0).all()
    assert bert.corpus_f1(HYPS, [[r] for r in REFS]) == pytest.approx(float(other[:, 2].mean()))


def test_bertscore_multi_reference_takes_the_elementwise_max(bert):
    groups = [[REFS[i], REFS[(i + 1) % 4], ""] for i in range(4)]
    multi = bert.score(HYPS, groups)
    singles = torch.stack([bert.score(HYPS, [[g[k]] for g in groups]) for k in range(3)])
    assert torch.allclose(multi, singles.max(dim=0).values, atol=1e-6)
    assert (singles[2] == 0).all()  # a blank reference line scores 0 and never wins


def test_bertscore_empty_candidate_or_reference_scores_zero(bert):
    scores = bert.score(["", "the eagle"], [["the eagle"], [""]])
    assert (scores == 0).all()


def test_bertscore_encodes_with_a_prefix_space_for_roberta(bert, models):
    assert bert.add_prefix_space
    tok = AutoTokenizer.from_pretrained(models["bertscore"]["model"])
    assert bert.encode("  the eagle ") == tok(" the eagle")["input_ids"]
    assert bert.encode("") == [tok.cls_token_id, tok.sep_token_id]


def _greedy_reference(model_dir: str, layer: int, cand: str, ref: str) -> tuple[float, float, float]:
    """BERTScore of one pair written from the paper: greedy max cosine, special tokens matched but unweighted."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()

    def vectors(text: str) -> torch.Tensor:
        ids = tok(" " + text.strip(), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[layer][0]
        return torch.nn.functional.normalize(hidden, dim=-1)

    c, r = vectors(cand), vectors(ref)
    sim = c @ r.T  # [cand tokens, ref tokens]
    precision = sim[1:-1].max(dim=1).values.mean().item()
    recall = sim[:, 1:-1].max(dim=0).values.mean().item()
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_bertscore_equals_an_independent_greedy_matching(bert, models):
    ours = bert.score(HYPS, [[r] for r in REFS], batch_size=1)
    for i, (cand, ref) in enumerate(zip(HYPS, REFS)):
        expected = _greedy_reference(models["bertscore"]["model"], 17, cand, ref)
        assert ours[i].tolist() == pytest.approx(expected, abs=1e-5)


def test_bertscore_layer_out_of_range_is_an_error(models):
    with pytest.raises(ValueError, match="layer 40"):
        BertScorer.load(models["bertscore"]["model"], 40, device="cpu")


@pytest.mark.parametrize(("name", "layer"), [("bertscore", 17), ("moverscore", 1)])
def test_bertscore_equals_the_bert_score_package(models, name, layer):
    bert_score = pytest.importorskip("bert_score")
    model_dir = models[name]["model"]
    groups = [[REFS[i], REFS[(i + 2) % 4]] for i in range(4)]
    # bert-score 0.3.13 on transformers 5 drops add_prefix_space (ignored by encode); compare like with like
    ours = BertScorer.load(model_dir, layer, device="cpu", add_prefix_space=False)
    tok = bert_score.utils.get_tokenizer(model_dir)
    assert [bert_score.utils.sent_encode(tok, s) for s in HYPS] == [ours.encode(s) for s in HYPS]
    p, r, f = bert_score.score(HYPS, groups, model_type=model_dir, num_layers=layer, device="cpu")
    assert torch.allclose(torch.stack([p, r, f], dim=-1), ours.score(HYPS, groups), atol=1e-6)


# --- MoverScore -----------------------------------------------------------------------------------------------
def test_moverscore_idf_dict(mover):
    idf = mover.idf_dict(REFS)
    tok = mover.tokenizer
    n = len(REFS)
    assert idf[tok.cls_token_id] == 0.0 and idf[tok.sep_token_id] == 0.0  # in every text
    the_id = tok.convert_tokens_to_ids("the")
    df = sum("the" in mover.tokens(t) for t in REFS)
    assert idf[the_id] == pytest.approx(log((n + 1) / (df + 1)))
    assert idf[10**9] == pytest.approx(log(n + 1))  # an unseen id


def test_moverscore_identical_texts_reach_the_maximum(mover):
    scores = mover.sentence_scores(REFS, REFS, mover.idf_dict(REFS), mover.idf_dict(REFS))
    assert scores == pytest.approx([1.0] * len(REFS), abs=1e-3)  # float32 distances: ~1e-4 below 1
    others = mover.sentence_scores(REFS, HYPS, mover.idf_dict(REFS), mover.idf_dict(HYPS))
    assert max(others) < min(scores)


def test_moverscore_is_symmetric_when_sides_and_idf_swap(mover):
    idf_ref, idf_hyp = mover.idf_dict(REFS), mover.idf_dict(HYPS)
    forward = mover.sentence_scores(REFS, HYPS, idf_ref, idf_hyp)
    backward = mover.sentence_scores(HYPS, REFS, idf_hyp, idf_ref)
    assert forward == pytest.approx(backward, abs=1e-5)


def test_moverscore_idf_weighting_changes_the_score(mover):
    uniform = defaultdict(lambda: 1.0)
    weighted = mover.sentence_scores(REFS, HYPS, mover.idf_dict(REFS), mover.idf_dict(HYPS))
    flat = mover.sentence_scores(REFS, HYPS, uniform, uniform)
    assert all(abs(a - b) > 1e-4 for a, b in zip(weighted, flat))
    # a word in every reference gets idf 0: no mass on it
    texts = ["the eagle", "the river"]
    _, weights, tokens = mover._embed(texts, mover.idf_dict(texts))
    assert tokens[0][1] == "the" and tokens[0][2] not in tokens[1]
    assert weights[0, 1] == 0 and weights[0, 2] == pytest.approx(log(3 / 2))


def test_moverscore_empty_hypothesis_scores_one_as_the_original(mover):
    refs, hyps = ["the eagle is near the river", "a pub"], ["", "a pub in town"]
    assert mover.sentence_scores(refs, hyps, mover.idf_dict(refs), mover.idf_dict(hyps))[0] == 1.0


def _patched_moverscore_v2(model_dir: str, tmp_path: Path):
    """``moverscore_v2`` from the installed ``moverscore`` package, patched to run here: CPU, the tiny model,
    transformers 5 (``model_max_length``, tuple outputs), numpy 2, and pyemd's C++ backend (pyemd < 1.0 had
    only that one)."""
    spec = importlib.util.find_spec("moverscore_v2")
    if spec is None or spec.origin is None:
        pytest.skip("moverscore (PyPI moverscore==1.0.3) is not installed")
    source = Path(spec.origin).read_text()
    patches = [
        (
            "from transformers import *",
            "from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer",
        ),
        ("model_name = 'distilbert-base-uncased'", f"model_name = {model_dir!r}"),
        ("'cuda:0'", "'cpu'"),
        ("tokenizer.max_len", "tokenizer.model_max_length"),
        ("np.float)", "np.float64)"),
        ("attention_mask = attention_mask)", "attention_mask = attention_mask, return_dict=False)"),
        ("emd_with_flow(c1, c2, dst)", "emd_with_flow(c1, c2, dst, backend='cpp')"),
        ("import matplotlib.pyplot as plt", ""),
    ]
    for old, new in patches:
        assert old in source, old
        source = source.replace(old, new)
    path = tmp_path / "moverscore_v2_cpu.py"
    path.write_text(source)
    module_spec = importlib.util.spec_from_file_location("moverscore_v2_cpu", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["moverscore_v2_cpu"] = module  # its idf uses a multiprocessing pool
    module_spec.loader.exec_module(module)
    return module


def test_moverscore_equals_moverscore_v2(models, mover, tmp_path):
    original = _patched_moverscore_v2(models["moverscore"]["model"], tmp_path)
    refs, hyps = [*REFS, ""], [*HYPS, "the eagle"]
    idf_ref, idf_hyp = original.get_idf_dict(refs, nthreads=1), original.get_idf_dict(hyps, nthreads=1)
    assert dict(idf_ref) == dict(mover.idf_dict(refs))
    expected = original.word_mover_score(
        refs, hyps, idf_ref, idf_hyp, stop_words=[], n_gram=1, remove_subwords=True
    )
    ours = mover.sentence_scores(refs, hyps, mover.idf_dict(refs), mover.idf_dict(hyps))
    assert ours == pytest.approx([float(x) for x in expected], abs=1e-9)


# --- BLEURT -----------------------------------------------------------------------------------------------------
def test_bleurt_reads_max_seq_length_from_its_config(bleurt):
    assert bleurt.max_seq_length == 128


def test_bleurt_is_deterministic_and_batching_invariant(bleurt, models):
    first = bleurt.score(REFS, HYPS)
    again = BleurtScorer.load(models["bleurt"]["checkpoint"], device="cpu").score(REFS, HYPS)
    assert first == again
    assert bleurt.score(REFS, HYPS, batch_size=1) == pytest.approx(first, abs=1e-5)
    assert len({round(s, 4) for s in first}) == len(first)  # random but not constant
    assert bleurt.corpus_score(REFS, HYPS) == pytest.approx(float(np.mean(first)))


def test_bleurt_encoding_truncates_the_longer_side_first(models):
    short = BleurtScorer.load(models["bleurt"]["checkpoint"], max_seq_length=10, device="cpu")
    tok = short.tokenizer
    ids, segments = short.encode_pair("a b c d e f g h", "x y")
    tokens = tok.convert_ids_to_tokens(ids)
    assert tokens == ["[CLS]", "a", "b", "c", "d", "e", "[SEP]", "x", "y", "[SEP]"]
    assert segments == [0] * 7 + [1] * 3
    ids, _ = short.encode_pair("a b c d", "w x y z")  # a tie drops from the candidate
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "a", "b", "c", "d", "[SEP]", "w", "x", "y", "[SEP]"]


def _tf_name(key: str) -> tuple[str, bool]:
    """The TF variable of a ``BertForSequenceClassification`` parameter, written out by hand for the test."""
    fixed = {
        "bert.embeddings.word_embeddings.weight": "bert/embeddings/word_embeddings",
        "bert.embeddings.position_embeddings.weight": "bert/embeddings/position_embeddings",
        "bert.embeddings.token_type_embeddings.weight": "bert/embeddings/token_type_embeddings",
        "bert.embeddings.LayerNorm.weight": "bert/embeddings/LayerNorm/gamma",
        "bert.embeddings.LayerNorm.bias": "bert/embeddings/LayerNorm/beta",
        "bert.pooler.dense.weight": "bert/pooler/dense/kernel",
        "bert.pooler.dense.bias": "bert/pooler/dense/bias",
        "classifier.weight": "dense/kernel",
        "classifier.bias": "dense/bias",
    }
    if key in fixed:
        return fixed[key], key.endswith("dense.weight") or key == "classifier.weight"
    parts = key.split(".")  # bert.encoder.layer.<i>.<module path>.<weight|bias>
    module = "/".join(parts[4:-1])
    is_norm = parts[-2] == "LayerNorm"
    leaf = {"weight": "gamma" if is_norm else "kernel", "bias": "beta" if is_norm else "bias"}[parts[-1]]
    return f"bert/encoder/layer_{parts[3]}/{module}/{leaf}", leaf == "kernel"


def test_bleurt_tf_checkpoint_mapping_round_trips(bleurt):
    state = bleurt.model.state_dict()
    variables = {}
    for key, value in state.items():
        name, transpose = _tf_name(key)
        assert tf_to_torch_name(name) == (key, transpose)
        variables[name] = (value.T if transpose else value).numpy()
    variables["bert/encoder/layer_0/attention/self/query/kernel/adam_m"] = np.zeros(
        1
    )  # optimizer slot: ignored
    variables["global_step"] = np.array(7)
    converted = state_dict_from_tf(variables, list(state))
    assert all(torch.equal(converted[k], state[k]) for k in state)
    del variables["dense/kernel"]
    with pytest.raises(ValueError, match="lacks 1 weights"):
        state_dict_from_tf(variables, list(state))


def test_bleurt_tf_config_uses_the_tanh_gelu():
    tf_config = {  # google-research/bleurt test_checkpoint/bert_config.json
        "hidden_size": 128,
        "hidden_act": "gelu",
        "initializer_range": 0.02,
        "vocab_size": 30522,
        "hidden_dropout_prob": 0.1,
        "num_attention_heads": 2,
        "type_vocab_size": 2,
        "max_position_embeddings": 512,
        "num_hidden_layers": 2,
        "intermediate_size": 512,
        "attention_probs_dropout_prob": 0.1,
    }
    config = bert_config_from_tf(tf_config)
    assert config.hidden_act == "gelu_new" and config.num_labels == 1 and config.num_hidden_layers == 2


def test_bleurt_unconverted_tensorflow_checkpoint_is_unavailable(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(MetricModelUnavailable, match="convert-bleurt"):
        BleurtScorer.load(str(tmp_path))


# --- the DART protocol ------------------------------------------------------------------------------------------
def test_spec_validation():
    assert validate_spec(None) == {}
    assert validate_spec({"bertscore": None}) == {"bertscore": {}}
    with pytest.raises(ValueError, match="unknown model metrics"):
        validate_spec({"bleu": {}})
    with pytest.raises(ValueError, match="unknown options"):
        validate_spec({"bertscore": {"layers": 17}})
    with pytest.raises(ValueError, match="checkpoint"):
        validate_spec({"bleurt": {}})
    with pytest.raises(ValueError, match="DART protocol only"):
        score_files("e2e", "hyp.txt", "refs.txt", model_metrics={"bertscore": {}})


def test_the_dart_protocol_references(models, mover, bert, bleurt):
    refs = [[r, "another reference"] for r in REFS]
    result = score_dart_model_metrics(HYPS, refs, models)
    assert result.unavailable == {}
    # MoverScore and BLEURT on reference 0, BERTScore on the 3 reference lines (blank ones included)
    assert result.metrics["MoverScore"] == pytest.approx(mover.corpus_score(REFS, HYPS))
    assert result.metrics["BERTScore"] == pytest.approx(bert.corpus_f1(HYPS, [[*g, ""] for g in refs]))
    assert result.metrics["BLEURT"] == pytest.approx(bleurt.corpus_score(REFS, HYPS))
    assert "[tiny-random-bleurt] (max_seq_length 128)" in result.models["BLEURT"]
    assert "layer 17" in result.models["BERTScore"] and "pyemd 1.1.0" in result.models["MoverScore"]


def test_missing_model_is_recorded_not_fatal(models, tmp_path):
    spec = {**models, "bleurt": {"checkpoint": str(tmp_path / "no-such-bleurt")}}
    result = score_dart_model_metrics(HYPS, [[r] for r in REFS], spec)
    assert set(result.metrics) == {"MoverScore", "BERTScore"}
    assert "no such model directory" in result.unavailable["BLEURT"]
    assert set(result.models) == {"MoverScore", "BERTScore"}


@pytest.mark.java
def test_cli_score_dart_with_model_metrics(models, shipped_vectors, tmp_path):
    folder = shipped_vectors / "dart"
    spec = {**models, "bleurt": {"checkpoint": str(tmp_path / "missing-bleurt")}}
    spec_file = tmp_path / "model_metrics.json"
    spec_file.write_text(json.dumps(spec))
    out = tmp_path / "dart.json"
    argv = ["score", "--dataset", "dart", "--hyp", str(folder / "hypotheses.txt"), "--refs", str(folder)]
    cli_main([*argv, "--out", str(out), "--model-metrics", str(spec_file)])
    result = json.loads(out.read_text())
    official = json.loads((folder / "official_scores.json").read_text())["scores"]
    assert result["metrics"]["BLEU"] == pytest.approx(official["BLEU"], abs=1e-9)
    assert {"METEOR", "TER", "MoverScore", "BERTScore"} <= set(result["metrics"])
    assert "BLEURT" not in result["metrics"] and "missing-bleurt" in result["unavailable"]["BLEURT"]
    assert set(result["tools"]["model_metrics"]) == {"MoverScore", "BERTScore"}
    assert 0 < result["metrics"]["BERTScore"] <= 1
