"""Load ``config/claims.yaml``: schema-checked (workflow/schemas/claims.schema.yaml), ids unique, every selector
pointing at an artifact, row, dataset, metric and swept value of the loaded configuration.

Errors name the file, the claim and the key. A row or swept value that the configuration does not run is an error
at paper scale; at demo scale (fewer rows and sizes) it only makes the claim "not in this configuration"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "claims.schema.yaml"


class ClaimsError(ValueError):
    """A claims file that cannot be used; the message names the file, the claim and the key."""


def _where(path: Any) -> str:  # noqa: ANN401
    return ".".join(str(p) for p in path) or "(top level)"


def validate_claims(data: Any, source: str) -> list[dict[str, Any]]:  # noqa: ANN401
    """The claims of a parsed file, checked against the schema, with unique ids."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ClaimsError(f"{source}: expected a mapping with a list `claims`")
    for index, claim in enumerate(data["claims"]):
        name = claim.get("id", f"#{index + 1}") if isinstance(claim, dict) else f"#{index + 1}"
        item_schema = {"$defs": schema["$defs"], **schema["properties"]["claims"]["items"]}
        errors = sorted(validator.evolve(schema=item_schema).iter_errors(claim), key=lambda e: list(e.path))
        if errors:
            err = _best(errors)
            raise ClaimsError(f"{source}: claim {name!r}, key {_where(err.path)}: {err.message}")
    errors = list(validator.iter_errors(data))
    if errors:
        err = _best(errors)
        raise ClaimsError(f"{source}: key {_where(err.path)}: {err.message}")
    seen: set[str] = set()
    for claim in data["claims"]:
        if claim["id"] in seen:
            raise ClaimsError(f"{source}: claim {claim['id']!r}: the id is used twice")
        seen.add(claim["id"])
    return data["claims"]


def _best(errors: list) -> Any:  # noqa: ANN401
    """The most specific error (the deepest path), so the message names the key that is wrong."""
    import jsonschema

    best = jsonschema.exceptions.best_match(errors)
    deep = max(errors, key=lambda e: len(list(e.absolute_path)))
    return deep if len(list(deep.absolute_path)) > len(list(best.absolute_path)) else best


def load_claims(path: Path | str) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise ClaimsError(f"{path}: the claims file is missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ClaimsError(f"{path}: not valid YAML ({err})") from err
    return validate_claims(data, str(path))


def check_claims(claims: list[dict[str, Any]], manifests: dict[str, dict], strict: bool, source: str) -> None:
    """Every selector refers to the configuration (see the module docstring); raises ClaimsError."""
    from prefixtune.claims.evidence import Resolver

    for claim in claims:
        if "statement" not in claim:
            continue
        if claim["artifact"] not in manifests:
            raise ClaimsError(
                f"{source}: claim {claim['id']!r}, key artifact: no artifact {claim['artifact']!r} in the "
                f"configuration (expected one of {', '.join(sorted(manifests))})"
            )
        resolver = Resolver(manifests, strict=strict, claim=claim, source=source)
        for key, selector in selectors(claim["statement"]):
            resolver.expand(selector, key)


def selectors(statement: dict[str, Any]) -> list[tuple[str, dict]]:
    """(key path, selector) of every selector of a statement."""
    out = []
    for key in ("a", "b", "series"):
        if key in statement:
            out.append((f"statement.{key}", statement[key]))
    for g, group in enumerate(statement.get("groups", [])):
        out += [(f"statement.groups.{g}.{i}", sel) for i, sel in enumerate(group)]
    for key in ("numerator", "denominator"):
        if key in statement:
            runs = statement[key]["runs"]
            runs = runs if isinstance(runs, list) else [runs]
            out += [(f"statement.{key}.runs.{i}", sel) for i, sel in enumerate(runs)]
    return out
