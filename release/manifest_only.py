"""`make manifest-only`: the connector in the forms Airbyte takes a declarative connector.

    build/manifest-only/  as the catalogue takes it (airbyte-integrations/connectors/source-smstools):
                          manifest.yaml (schemas inline), components.py (one file, built from
                          source_smstools/components/*.py), metadata.yaml (language:manifest-only,
                          the source-declarative-manifest base image), icon.svg, README.md and docs/
    build/builder/        manifest.yaml, the Builder edition: no custom code (Airbyte Cloud)

Run by the tests too (integration_tests/runtimes), so what they read is what this writes. Needs
airbyte-cdk (its YAML loader and its manifest reference resolver), nothing of ours installed.
"""

import argparse
import ast
import importlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "source_smstools"
COMPONENTS = PACKAGE / "components"
OURS = "source_smstools.components."
THEIRS = "source_declarative_manifest.components."  # the module the generic runtime loads components.py as

# Airbyte's generic runtime, one image per CDK release, tagged with the CDK's version: the one our
# manifest is tested on. The catalogue pins it with its digest, which can only be read from Docker Hub
# (`docker buildx imagetools inspect docker.io/airbyte/source-declarative-manifest:7.39.1`):
# `make manifest-only SDM_DIGEST=sha256:...` adds it.
CDK_VERSION = re.search(r'"airbyte-cdk==([^"]+)"', (Path(__file__).resolve().parents[1] / "setup.py").read_text()).group(1)  # said once, in setup.py
BASE_IMAGE = f"docker.io/airbyte/source-declarative-manifest:{CDK_VERSION}"

# the docs' sections about our package alone (the emulator ships with it, not with the manifest)
PACKAGE_ONLY_SECTIONS = ("## Testing your pipeline with the emulator",)


class BuildError(Exception):
    pass


# -- components.py ----------------------------------------------------------------------------


def _module_order(directory: Path) -> List[Path]:
    """The component modules, each after those it imports."""
    files = {p.stem: p for p in sorted(directory.glob("*.py")) if p.stem != "__init__"}
    needs = {name: _local_imports(ast.parse(path.read_text())) & set(files) for name, path in files.items()}
    ordered: List[str] = []
    while len(ordered) < len(files):
        ready = [n for n in files if n not in ordered and needs[n] <= set(ordered)]
        if not ready:
            raise BuildError(f"the component modules import one another in a circle: {sorted(set(files) - set(ordered))}")
        ordered.extend(ready)
    return [files[n] for n in ordered]


def _local_imports(tree: ast.Module) -> set:
    """The names of the component modules a module imports."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("source_smstools.components"):
            if node.module == "source_smstools.components":
                names |= {a.name for a in node.names}
            else:
                names.add(node.module.rsplit(".", 1)[-1])
    return names


def _top_level_names(tree: ast.Module, lines: List[str]) -> Dict[str, str]:
    """name -> its source text, for what a module defines at its top level (imports aside)."""
    names = {}
    for node in tree.body:
        text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = text
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names[name.id] = text
    return names


def _imported_as(module: str, name: str) -> str:
    """What `from module import name` binds, said one way whatever the path it is imported by
    (the CDK re-exports its classes from their packages)."""
    found = getattr(importlib.import_module(module), name, None)
    where = getattr(found, "__module__", None)
    qualified = getattr(found, "__qualname__", None)
    return f"{where}.{qualified}" if where and qualified else f"{module}.{name}"


def _is_ours(node: ast.AST) -> bool:
    return isinstance(node, ast.ImportFrom) and (node.module or "").startswith("source_smstools")


class _Imports:
    """The imports of every module, one statement per module imported from, at the top of the file."""

    def __init__(self) -> None:
        self.whole: Dict[str, str] = {}  # bound name -> `import x` / `import x.y as z`
        self.names: Dict[str, Dict[str, str]] = {}  # module -> {bound name: `name` or `name as alias`}
        self.bound: Dict[str, tuple] = {}  # bound name -> (what it is, the module that imported it first)

    def add(self, node: ast.AST, path: Path) -> None:
        for alias in node.names:
            if isinstance(node, ast.Import):
                bound = alias.asname or alias.name.split(".")[0]
                what = alias.name if alias.asname or "." not in alias.name else bound
                text = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
            else:
                bound = alias.asname or alias.name
                what = _imported_as(node.module, alias.name)
            if bound in self.bound:
                if self.bound[bound][0] != what:
                    raise BuildError(f"{bound} is imported as {self.bound[bound][0]} in {self.bound[bound][1]} and as {what} in {path.name}: rename one")
                continue  # the same thing by another path: imported once
            self.bound[bound] = (what, path.name)
            if isinstance(node, ast.Import):
                self.whole[bound] = text
            else:
                self.names.setdefault(node.module, {})[bound] = alias.name + (f" as {alias.asname}" if alias.asname else "")

    def text(self) -> str:
        """The standard library's imports, then the others', each group sorted."""
        groups = []
        for standard in (True, False):
            lines = sorted(t for t in self.whole.values() if _standard(t.split()[1]) == standard)
            for module in sorted(m for m in self.names if _standard(m) == standard):
                names = sorted(self.names[module].values(), key=str.lower)
                line = f"from {module} import {', '.join(names)}"
                lines.append(line if len(line) <= 100 else f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")")
            groups.append("\n".join(lines))
        return "\n\n".join(g for g in groups if g) + "\n"


def _standard(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


# A module may import another whole (`from source_smstools.components import changes`, so that the
# tests can patch `changes.now` for every module that asks the time): here all modules are one
# namespace, so that name is bound to it.
NAMESPACE = '''

class _ThisFile:
    """`changes.now` in a module that imports changes whole is this file's `now`: one namespace here."""

    def __getattr__(self, name: str) -> Any:
        return globals()[name]
'''


def components_py(directory: Path = COMPONENTS) -> str:
    """One file of every component module, in import order: the modules joined, nothing rewritten.

    Each module's own imports go to the top, once; its imports of the others are left out (their
    names are in the same file); a module it imports whole is bound to the file's namespace. The
    modules are written for this: imports at their top, no `from __future__ import annotations`
    (airbyte-cdk 7.39.1 runs injected components before it registers their module, and dataclasses
    then cannot resolve string annotations), no import inside a function. A top-level name that two
    modules define differently, or import as two things, fails the build."""
    seen: Dict[str, tuple] = {}
    imports = _Imports()
    whole: List[str] = []
    sections = []
    for path in _module_order(directory):
        text = path.read_text()
        tree = ast.parse(text)
        lines = text.splitlines()
        for name, source in _top_level_names(tree, lines).items():
            if name in seen and seen[name][1] != source:
                raise BuildError(f"{name} is defined in both {seen[name][0]} and {path.name}: rename one")
            seen.setdefault(name, (path.name, source))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in tree.body:
                raise BuildError(f"{path.name}:{node.lineno}: an import inside a block; components.py has its imports at the top")
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                raise BuildError(f"{path.name}: `from __future__` changes what the joined file means; leave it out")
        drop = set()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                drop.update(range(node.lineno - 1, node.end_lineno))
                if _is_ours(node):
                    if node.module == "source_smstools.components":
                        whole.extend(a.name for a in node.names if a.name not in whole)
                else:
                    imports.add(node, path)
        doc = ast.get_docstring(tree)
        if doc is not None:
            docstring = tree.body[0]
            drop.update(range(docstring.lineno - 1, docstring.end_lineno))
        body = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip("\n")
        about = "".join(f"# {line}".rstrip() + "\n" for line in (doc or "").splitlines())
        sections.append(f"# {'-' * 98}\n# {path.name}\n{about}\n\n{body}\n")
    if whole:
        imports.add(ast.parse("from typing import Any").body[0], Path("components.py"))
    head = (
        '"""The components of source-smstools, in one file as Airbyte\'s generic runtime loads them.\n\n'
        "Joined by `make manifest-only` from source_smstools/components/*.py, one module per concern, in\n"
        'the order they import one another: change those, not this file."""\n\n'
    )
    spaces = ""
    if whole:
        spaces = NAMESPACE + "\n\n" + "".join(f"{name} = _ThisFile()\n" for name in whole)
    source = head + imports.text() + spaces + "\n\n" + "\n\n".join(sections)
    compile(source, "components.py", "exec")
    return source


# -- manifest.yaml ----------------------------------------------------------------------------


def _walk(node: Any, visit: Any) -> Any:
    if isinstance(node, dict):
        return visit({k: _walk(v, visit) for k, v in node.items()})
    if isinstance(node, list):
        return [_walk(v, visit) for v in node]
    return node


def _without_schema_id(schema: Dict[str, Any]) -> Dict[str, Any]:
    # `$schema` names the draft with an http:// address; the CDK needs no such name, and what ships
    # in the catalogue carries https:// addresses only
    return {k: v for k, v in schema.items() if k != "$schema"}


def manifest_only(manifest: Dict[str, Any], defined: set) -> Dict[str, Any]:
    """Our manifest with the class names of the generic runtime and the schemas inline."""

    def visit(node: Dict[str, Any]) -> Dict[str, Any]:
        name = node.get("class_name")
        if isinstance(name, str) and name.startswith(OURS):
            short = name.rsplit(".", 1)[-1]
            if short not in defined:
                raise BuildError(f"{name} is not in components.py")
            node["class_name"] = THEIRS + short
        if node.get("type") == "JsonFileSchemaLoader":
            schema = json.loads((ROOT / node["file_path"]).read_text())
            return {"type": "InlineSchemaLoader", "schema": _without_schema_id(schema)}
        return node

    out = _walk(manifest, visit)
    spec = out["spec"]["connection_specification"]
    out["spec"]["connection_specification"] = _without_schema_id(spec)
    return out


# -- the Builder edition ----------------------------------------------------------------------

# what the Builder edition does without, for its description and the docs
WITHOUT = (
    "phone discovery (Phone Numbers is required)",
    "change detection (every listed phone's conversation is asked for every sync)",
    "the account's other streams",
    "the tolerant reader (answers written the way PHP backends write JSON: numbers as strings, a BOM, "
    "lists as objects; only the documented shape is read)",
    "the evidence-based early stop (every page of a conversation is read; only newer messages are emitted)",
    "restarting a conversation's paging when it shrinks mid-read",
    "error messages naming the phone and page",
    "the per-phone state checks",
    "phone numbers as people type them (digits with an optional leading + only)",
    "naming the host and cause of a connection that fails",
)


def builder_edition(manifest: Dict[str, Any]) -> Dict[str, Any]:
    """The conversation stream of the listed phones in YAML alone (Airbyte Cloud runs no custom code).

    Paging on `total`, incremental per phone on `unixDatetime`. No early stop: the CDK's is_data_feed
    would stop at the first page whose last message is older than the cursor, and lose for good any
    newer message further down (an order the API does not promise, or messages moved down a page
    while it is read). Every page is read and the cursor filters on the client, inclusive, so a
    message at the cursor's second is read again (the destination deduplicates it on `id`): more
    requests, nothing lost that YAML can keep."""
    manifest = ManifestReferenceResolver().preprocess_manifest(json.loads(json.dumps(manifest)))
    d = manifest["definitions"]
    filters = [*d["shared_filters"]["first"], *d["requester"]["error_handler"]["response_filters"], *d["shared_filters"]["last"]]
    schema = json.loads((PACKAGE / "schemas" / "conversation.json").read_text())
    stream = d["conversation_stream"]
    cursor = dict(stream["incremental_sync"])
    cursor.pop("is_data_feed", None)
    # one CDK cursor per phone: the book that keeps each phone's cursor under one global cursor is our code
    cursor.pop("global_substream_cursor", None)
    cursor["is_client_side_incremental"] = True
    requester = {k: v for k, v in d["requester"].items() if k != "error_handler"}
    requester["url"] = (
        "{{ (config.get('base_url') or 'https://api.smsgatewayapi.com').rstrip('/') }}"
        "/v1/conversation/{{ stream_partition.phone | replace('+', '') }}"
    )
    # the CDK's own header authentication (ours also says which host a failed connection meant)
    requester["authenticator"] = {
        "type": "ApiKeyAuthenticator",
        "api_token": "{{ config['client_secret'] }}",
        "inject_into": {"type": "RequestOption", "inject_into": "header", "field_name": "X-Client-Secret"},
    }
    requester["error_handler"] = {
        "type": "DefaultErrorHandler",
        "max_retries": d["error_handler"]["max_retries"],
        "backoff_strategies": d["backoff_strategies"],
        "response_filters": filters,
    }
    page_size = d["page_size"]
    conversation = {
        "type": "DeclarativeStream",
        "name": "conversation",
        "primary_key": ["id"],
        "schema_loader": {"type": "InlineSchemaLoader", "schema": _without_schema_id(schema)},
        "retriever": {
            "type": "SimpleRetriever",
            "requester": requester,
            "record_selector": {
                "type": "RecordSelector",
                "extractor": {"type": "DpathExtractor", "field_path": ["conversation"]},
                "schema_normalization": "Default",
            },
            "paginator": {
                **{k: v for k, v in d["paginator"].items() if k != "pagination_strategy"},
                "pagination_strategy": {
                    "type": "CursorPagination",
                    "page_size": page_size,
                    "cursor_value": "{{ response.page + 1 }}",
                    "stop_condition": "{{ response.page * page_size >= response.total }}",
                },
            },
            "partition_router": {
                "type": "ListPartitionRouter",
                "values": "{{ config['phone_numbers'] }}",
                "cursor_field": "phone",
            },
        },
        "incremental_sync": cursor,
        "transformations": _message_fields(),
        "$parameters": stream["$parameters"],
    }
    spec = json.loads(json.dumps(manifest["spec"]))
    spec.pop("config_normalization_rules", None)  # typed phone numbers are brought to one form by our code
    connection = _without_schema_id(spec["connection_specification"])
    kept = ("client_id", "client_secret", "phone_numbers", "start_date", "lookback_window_days", "page_size", "base_url")
    connection["properties"] = {k: v for k, v in connection["properties"].items() if k in kept}
    phones = connection["properties"]["phone_numbers"]
    phones["minItems"] = 1
    phones["items"] = {"type": "string", "pattern": "^\\+?[0-9]{6,15}$(?!\\n)"}
    phones["examples"] = [["+32470123456", "393331234567"]]
    connection["properties"]["phone_numbers"]["description"] = (
        "The phone numbers whose conversations to sync, in international form: digits with an optional leading +, "
        "6 to 15 digits (for example +32470123456)."
    )
    connection["required"] = ["client_id", "client_secret", "phone_numbers"]
    spec["connection_specification"] = connection
    return {
        "version": manifest["version"],
        "type": "DeclarativeSource",
        "description": (
            "Smstools (api.smsgatewayapi.com), Builder edition with no custom code: the conversation of each listed "
            "phone, incremental per phone. Without: " + "; ".join(WITHOUT) + ". The full connector: "
            "the source-smstools image or the catalogue's manifest-only connector."
        ),
        "check": {"type": "CheckStream", "stream_names": ["conversation"]},
        "streams": [conversation],
        "spec": spec,
    }


def _message_fields() -> List[Dict[str, Any]]:
    """What components/records.MessageFields adds, in AddFields: `phone`, `id`, `datetime_utc`, and
    a single attachment made a list of one (a condition is the transformation's, not a field's)."""
    # `~` writes each value as Python's str() does (the CDK's `string` filter would quote numbers)
    key = " ~ '\\x1f' ~ ".join(f"record.{n}" for n in ("direction", "unixDatetime", "sender", "receiver", "message"))
    return [{
        "type": "AddFields",
        "fields": [
            {"path": ["phone"], "value": "{{ stream_partition.phone }}", "value_type": "string"},
            {
                "path": ["id"],
                "value": "{{ record.messageId ~ '' if record.messageId not in (none, '') else 'h' ~ "
                f"((stream_partition.phone ~ '\\x1f' ~ {key}) | hash('sha256'))[:32] }}}}",
                "value_type": "string",
            },
            {"path": ["datetime_utc"], "value": "{{ format_datetime(record.unixDatetime, '%Y-%m-%dT%H:%M:%SZ') }}", "value_type": "string"},
        ],
    }, {
        "type": "AddFields",
        "fields": [{"path": ["file"], "value": "{{ [record.file] }}"}],
        "condition": "{{ record.file is mapping }}",
    }]


# -- metadata.yaml ----------------------------------------------------------------------------


def metadata(ours: Dict[str, Any], digest: str) -> Dict[str, Any]:
    """Ours, as a manifest-only connector: its tags, the generic runtime's image, icon.svg."""
    data = dict(ours["data"])
    data["tags"] = ["language:manifest-only", "cdk:low-code"]
    data["connectorBuildOptions"] = {"baseImage": f"{BASE_IMAGE}@{digest}" if digest else BASE_IMAGE}
    data["icon"] = "icon.svg"
    # remoteRegistries stays as it is (pypi not enabled), as catalogue manifest-only connectors have it
    # a manifest-only connector has no unit or integration tests of its own: the catalogue runs its
    # acceptance tests
    data["connectorTestSuitesOptions"] = [{"suite": "acceptanceTests"}]
    return {**ours, "data": data}


# -- the build --------------------------------------------------------------------------------


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _docs(text: str) -> str:
    for heading in PACKAGE_ONLY_SECTIONS:
        start = text.find(f"\n{heading}\n")
        if start >= 0:
            end = text.find("\n## ", start + 1)
            text = text[: start + 1] + (text[end + 1 :] if end >= 0 else "")
    return text


def build(out: Path, digest: str = "") -> None:
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise BuildError(f"the base image's digest is sha256: and 64 hex digits, not {digest!r}")
    ours = yaml.safe_load((PACKAGE / "manifest.yaml").read_text())
    components = components_py()
    defined = {n.name for n in ast.parse(components).body if isinstance(n, ast.ClassDef)}
    generated = "# Generated by `make manifest-only` from source_smstools/manifest.yaml: change that file, not this one.\n"

    catalogue = out / "manifest-only"
    shutil.rmtree(catalogue, ignore_errors=True)
    (catalogue / "docs").mkdir(parents=True)
    (catalogue / "manifest.yaml").write_text(generated + _dump(manifest_only(ours, defined)))
    (catalogue / "components.py").write_text(components)
    (catalogue / "metadata.yaml").write_text(_dump(metadata(yaml.safe_load((ROOT / "metadata.yaml").read_text()), digest)))
    shutil.copyfile(ROOT / "smstools.svg", catalogue / "icon.svg")
    for name in ("smstools.md", "smstools-migrations.md"):
        (catalogue / "docs" / name).write_text(_docs((ROOT / "docs" / name).read_text()))
    (catalogue / "README.md").write_text(
        "# Smstools source\n\nThe manifest-only form of source-smstools, for airbyte-integrations/connectors/source-smstools;\n"
        "its user documentation is docs/smstools.md (docs/integrations/sources/smstools.md in the catalogue).\n"
        "Generated by `make manifest-only`.\n"
    )

    builder = out / "builder"
    shutil.rmtree(builder, ignore_errors=True)
    builder.mkdir(parents=True)
    (builder / "manifest.yaml").write_text(
        "# The Builder edition of source-smstools (no custom code), generated by `make manifest-only`:\n"
        "# import it in Airbyte Cloud's Connector Builder (Builder > Import a YAML).\n" + _dump(builder_edition(ours))
    )


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build"))
    parser.add_argument("--digest", default="", help="the base image's digest (sha256:...), read from Docker Hub")
    args = parser.parse_args(argv)
    try:
        build(Path(args.out), args.digest)
    except BuildError as error:
        sys.exit(f"make manifest-only: {error}")
    print(f"wrote {args.out}/manifest-only and {args.out}/builder")


if __name__ == "__main__":
    main(sys.argv[1:])
