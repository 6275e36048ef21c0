"""The text cleanup transformers 3.2 applied after decoding BPE ids, used by decoding and by XSUM scoring."""

from __future__ import annotations

# transformers 3.2 ``clean_up_tokenization``; transformers 5 no longer applies it to BPE tokenizers.
_CLEANUP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def clean_up_tokenization(text: str) -> str:
    for old, new in _CLEANUP:
        text = text.replace(old, new)
    return text
