"""Official-protocol metrics: E2E (``e2e``), WebNLG 2017 (``webnlg``), DART (``dart``); files via ``score``.

Building blocks: ``mteval`` (BLEU/NIST), ``coco`` (METEOR/ROUGE_L/CIDEr of e2e-metrics), ``meteor_jar`` (the
official METEOR 1.5 jar), ``ter`` (TER). Tests hold every route to the official scripts' numbers.
"""
