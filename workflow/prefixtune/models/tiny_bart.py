"""The offline demo's BART: a byte-level BPE tokenizer with BART's special tokens and a tiny BART, pre-trained briefly.

Saved with ``save_pretrained`` so that the pipeline loads it exactly like ``facebook/bart-large`` from the hub
(``AutoTokenizer`` / ``AutoModelForSeq2SeqLM``): ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>`` last,
sources encoded as ``<s> ... </s>``, decoding starting from ``</s>``, and bart-large's generation defaults. A randomly
initialised tiny model is degenerate (its argmax is nearly constant), so it is first trained as a seq2seq LM on the
caller's (source, target) pairs: that gives a prefix a real model to steer (implementation_notes.md §2).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import AddedToken, ByteLevelBPETokenizer
from tokenizers.processors import RobertaProcessing
from tqdm import tqdm
from transformers import BartConfig, BartForConditionalGeneration, GenerationConfig, PreTrainedTokenizerFast
from transformers.models.bart.modeling_bart import shift_tokens_right

log = logging.getLogger(__name__)

BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
BOS_ID, PAD_ID, EOS_ID = 0, 1, 2
BART_DROPOUT = 0.1  # dropout, attention_dropout and activation_dropout of facebook/bart-large
# facebook/bart-large's generation_config.json (official_code.md §5.2: the code inherited these).
BART_LARGE_GENERATION = {
    "bos_token_id": BOS_ID,
    "pad_token_id": PAD_ID,
    "eos_token_id": EOS_ID,
    "decoder_start_token_id": EOS_ID,
    "forced_bos_token_id": BOS_ID,
    "forced_eos_token_id": EOS_ID,
    "no_repeat_ngram_size": 3,
    "num_beams": 4,
    "early_stopping": True,
}


@dataclass(frozen=True)
class TinyBartRecipe:
    vocab_size: int = 1500
    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 2
    attention_heads: int = 4
    ffn_dim: int = 512
    max_position_embeddings: int = 512  # XSUM sources are truncated to 512 tokens
    pretrain_steps: int = 400
    batch_size: int = 16
    learning_rate: float = 1e-3
    max_source_tokens: int = 128  # pre-training truncation only
    max_target_tokens: int = 64
    pretrain_dropout: float = 0.0  # while pre-training; the saved config has bart-large's 0.1
    seed: int = 0


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE with BART's special-token ids and its ``<s> X </s>`` post-processing."""
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[BOS, PAD, EOS, UNK]
    )
    bpe.add_special_tokens([AddedToken(MASK, lstrip=True, rstrip=False, normalized=False, special=True)])
    bpe._tokenizer.post_processor = RobertaProcessing(
        (EOS, EOS_ID), (BOS, BOS_ID), trim_offsets=True, add_prefix_space=False
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        sep_token=EOS,
        cls_token=BOS,
        pad_token=PAD,
        unk_token=UNK,
        mask_token=AddedToken(MASK, lstrip=True, rstrip=False, normalized=False, special=True),
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )


def build_model(recipe: TinyBartRecipe, tokenizer: PreTrainedTokenizerFast) -> BartForConditionalGeneration:
    for token, expected in ((BOS, BOS_ID), (PAD, PAD_ID), (EOS, EOS_ID)):
        if tokenizer.convert_tokens_to_ids(token) != expected:
            raise ValueError(f"tokenizer: {token} must have id {expected} as in BART")
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=recipe.d_model,
        encoder_layers=recipe.encoder_layers,
        decoder_layers=recipe.decoder_layers,
        encoder_attention_heads=recipe.attention_heads,
        decoder_attention_heads=recipe.attention_heads,
        encoder_ffn_dim=recipe.ffn_dim,
        decoder_ffn_dim=recipe.ffn_dim,
        max_position_embeddings=recipe.max_position_embeddings,
        dropout=recipe.pretrain_dropout,
        attention_dropout=recipe.pretrain_dropout,
        activation_dropout=recipe.pretrain_dropout,
        scale_embedding=False,
        bos_token_id=BOS_ID,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=EOS_ID,
    )
    model = BartForConditionalGeneration(config)
    model.generation_config = GenerationConfig(**BART_LARGE_GENERATION)  # in transformers 5 these live here
    return model


def encode_pairs(
    tokenizer: PreTrainedTokenizerFast, pairs: list[tuple[str, str]], recipe: TinyBartRecipe
) -> list[tuple[list[int], list[int]]]:
    """``<s> source </s>`` and ``<s> target </s>`` ids, truncated as BART's tokenizer does (``</s>`` kept)."""
    encoded = []
    for source, target in pairs:
        src = tokenizer(source, truncation=True, max_length=recipe.max_source_tokens)["input_ids"]
        tgt = tokenizer(target, truncation=True, max_length=recipe.max_target_tokens)["input_ids"]
        encoded.append((src, tgt))
    return encoded


def collate(examples: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
    """Right-padded batch; ``decoder_input_ids`` = labels shifted right after ``</s>``, as the authors' code."""
    src_len = max(len(s) for s, _ in examples)
    tgt_len = max(len(t) for _, t in examples)
    input_ids = torch.full((len(examples), src_len), PAD_ID)
    attention_mask = torch.zeros((len(examples), src_len), dtype=torch.long)
    labels = torch.full((len(examples), tgt_len), -100)
    for row, (src, tgt) in enumerate(examples):
        input_ids[row, : len(src)] = torch.tensor(src)
        attention_mask[row, : len(src)] = 1
        labels[row, : len(tgt)] = torch.tensor(tgt)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "decoder_input_ids": shift_tokens_right(labels, PAD_ID, EOS_ID),
        "labels": labels,
    }


def pretrain(
    model: BartForConditionalGeneration,
    examples: list[tuple[list[int], list[int]]],
    recipe: TinyBartRecipe,
) -> float:
    """Full seq2seq training on random batches of the pairs (token-mean loss); returns the smoothed final loss."""
    if len(examples) < recipe.batch_size:
        raise ValueError(f"pre-training needs at least {recipe.batch_size} pairs, got {len(examples)}")
    rng = torch.Generator().manual_seed(recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: 0.5 * (1 + math.cos(math.pi * min(step, recipe.pretrain_steps) / recipe.pretrain_steps)),
    )
    model.train()
    smoothed = float("nan")
    for step in tqdm(range(recipe.pretrain_steps), desc="pretrain tiny BART", mininterval=5):
        rows = torch.randint(0, len(examples), (recipe.batch_size,), generator=rng).tolist()
        loss = model(**collate([examples[i] for i in rows])).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        smoothed = loss.item() if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * loss.item()
        if step % 100 == 0:
            log.info("pretrain tiny BART step %d loss %.4f", step, smoothed)
    model.eval()
    return smoothed


def _configure_like_bart_large(model: BartForConditionalGeneration) -> None:
    """bart-large's dropout in the saved config, so that "LM dropout on" means what it means there."""
    model.config.dropout = model.config.attention_dropout = model.config.activation_dropout = BART_DROPOUT


def build_tiny_bart(out_dir: Path, corpus_pairs: list[tuple[str, str]], recipe: TinyBartRecipe) -> None:
    """Train the tokenizer on both sides of the pairs, pre-train the model on them, save both to ``out_dir``."""
    random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    tokenizer = train_tokenizer([text for pair in corpus_pairs for text in pair], recipe.vocab_size)
    model = build_model(recipe, tokenizer)
    final_loss = pretrain(model, encode_pairs(tokenizer, corpus_pairs, recipe), recipe)
    _configure_like_bart_large(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    log.info(
        "tiny BART: vocabulary %d, %d parameters, pre-training loss %.4f, saved to %s",
        len(tokenizer),
        sum(p.numel() for p in model.parameters()),
        final_loss,
        out_dir,
    )
