"""Our transformers-3.2 beam search vs transformers 5 ``generate`` (beam 5, batch 1, same prompts)."""

from __future__ import annotations

import argparse

import torch

from common import median_seconds, random_gpt2
from prefixtune.decoding.beam_search import BeamSettings, beam_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "medium"])
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = random_gpt2(args.size).eval()
    torch.manual_seed(1)
    prompts = [torch.randint(0, 50000, (1, 30)) for _ in range(args.prompts)]
    eos = 50256
    # min_new_tokens forces the same amount of work on both sides
    settings = BeamSettings(num_beams=5, max_new_tokens=args.new_tokens, min_length=30 + args.new_tokens)

    def ours() -> None:
        with torch.no_grad():
            for p in prompts:
                beam_search(model, p, eos, settings)

    def hf() -> None:
        with torch.no_grad():
            for p in prompts:
                model.generate(
                    p,
                    num_beams=5,
                    max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens,
                    eos_token_id=eos,
                    pad_token_id=eos,
                    do_sample=False,
                )

    base = median_seconds(hf, args.repeats, warmup=1)
    cand = median_seconds(ours, args.repeats, warmup=1)
    print(f"size={args.size} prompts={args.prompts} new_tokens={args.new_tokens}")
    print(
        f"transformers generate (baseline): {base:.3f} s   ours: {cand:.3f} s   ratio ours/generate: {cand / base:.2f}"
    )


if __name__ == "__main__":
    main()
