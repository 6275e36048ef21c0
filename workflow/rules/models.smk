# Base models: a hub checkpoint saved locally, or the offline tiny GPT-2; both loaded with from_pretrained.


def base_model_args(wildcards):
    model = config["models"][wildcards.model]
    if model["source"] == "hub":
        return f"--hub-id {model['hub_id']} --revision {model.get('revision', 'main')}"
    recipe = json.dumps(model.get("recipe", {}))
    return f"--tiny-recipe '{recipe}' --corpus-size {model.get('corpus_size', 20000)}"


rule base_model:
    output:
        directory(f"{RESOURCES}/models/{{model}}"),
    params:
        args=base_model_args,
    log:
        f"{LOGS}/base_model/{{model}}.log",
    threads: 2
    resources:
        runtime=run_resources("base_model", "runtime"),
        mem_mb=run_resources("base_model", "mem_mb"),
    shell:
        "prefixtune base-model {params.args} --out {output:q} 2> {log:q}"
