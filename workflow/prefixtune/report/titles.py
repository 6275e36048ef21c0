"""The report artifacts this pipeline knows, with their titles (a light module: the CLI imports it)."""

TITLES = {
    "table1": "Table 1 — table-to-text (arXiv v1 Table 1 = ACL Table 2)",
    "table2": "Table 2 — summarization, XSUM (arXiv v1 Table 2 = ACL Table 3)",
    "table3": "Table 3 — extrapolation on XSUM, news-to-sports and within-news (arXiv v1 Table 3 = ACL Table 4)",
    "table4": "Table 4 — embedding-only and infix ablations on E2E (arXiv v1 Table 4 = ACL Table 5)",
    "appendix_dev": "Dev-set scores of the Table 1 models (ACL Table 9)",
    "appendix_dev_xsum": "Validation scores of the Table 2 models (ACL Table 7)",
    "methods": "Every method of the pipeline (a check that each runs end to end; no paper table)",
}

FIGURE_TITLES = {
    "figure3": "Figure 3 — low-data: PREFIX vs FINE-TUNE over training sizes (E2E, XSUM)",
    "figure3_appendix": "Figure 3, other metrics (arXiv v1 Figure 6 = ACL Figure 7)",
    "figure4": "Figure 4 — prefix length (XSUM, DART)",
    "figure5": "Figure 5 — initialization: random vs real words (E2E, 100 examples)",
    "figure5_appendix": "Figure 5, other metrics (arXiv v1 Figure 7 = ACL Figure 8)",
    "figure6": "Figure 6 (ACL only) — data efficiency: a share of the E2E training set",
}

ALL_TITLES = {**TITLES, **FIGURE_TITLES}
