#!/usr/bin/env bash
# Installs the pinned Pulumi AWS SDK for Python (`pulumi_aws`, without its dependencies:
# it is only read, never imported) into target/pulumi-aws-venv and extracts, from its
# source, every resource type token with its input property names (and which are
# required), and the input property names of the nested input types, into
# target/pulumi-aws-schema.json. app-deploy/tests/schema.rs checks the deploy program's
# tokens and property names against that file. Used by .ci/run; usable by hand:
#   bash scripts/pulumi-aws-schema.sh          # prints the JSON file's path
#
# Keep PULUMI_AWS_VERSION equal to `AWS_PROVIDER_VERSION` in deploy/src/aws.rs
# (the provider version the program asks the engine for); the test checks that too.
set -euo pipefail
cd "$(dirname "$0")/.."
PULUMI_AWS_VERSION="7.51.1"
VENV="target/pulumi-aws-venv"
OUT="target/pulumi-aws-schema.json"
# The SDK modules the deploy program uses (Python package names).
MODULES="acm apigateway apigatewayv2 cloudfront cloudwatch cognito dynamodb iam lambda_ route53 s3 sns sqs wafv2"

mkdir -p target
if [ ! -f "$OUT" ] || ! grep -q "\"version\": \"$PULUMI_AWS_VERSION\"" "$OUT"; then
  if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('pulumi_aws') != '$PULUMI_AWS_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "pulumi_aws==$PULUMI_AWS_VERSION" >&2
  fi
  "$VENV/bin/python" - "$PULUMI_AWS_VERSION" "$OUT" $MODULES <<'PY'
import ast, json, pathlib, re, sys, sysconfig

version, out, modules = sys.argv[1], sys.argv[2], sys.argv[3:]
root = pathlib.Path(sysconfig.get_paths()["purelib"]) / "pulumi_aws"


def getter_name(fn):
    """The Pulumi property name of a `@pulumi.getter` property, or None."""
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Attribute) and dec.attr == "getter":
            return fn.name
        if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "getter":
            for kw in dec.keywords:
                if kw.arg == "name":
                    return kw.value.value
            return fn.name
    return None


def properties(cls):
    props = {}
    for fn in cls.body:
        if isinstance(fn, ast.FunctionDef):
            name = getter_name(fn)
            if name is None:
                continue
            ann = ast.unparse(fn.returns) if fn.returns is not None else ""
            props[name] = {
                "required": "Optional[" not in ann,
                "types": sorted(set(re.findall(r"'(\w+Args)'", ann))),
            }
    return props


def is_input_type(cls):
    return any(ast.unparse(d) == "pulumi.input_type" for d in cls.decorator_list)


resources, types = {}, {}
for module in modules:
    directory = root / module
    token_module = module.rstrip("_")
    inputs = directory / "_inputs.py"
    if inputs.exists():
        for node in ast.parse(inputs.read_text()).body:
            if isinstance(node, ast.ClassDef) and is_input_type(node):
                types[f"{token_module}:{node.name}"] = properties(node)
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith(("_", "get_", "outputs")):
            continue
        tree = ast.parse(path.read_text())
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        for cls in classes.values():
            bases = [ast.unparse(b) for b in cls.bases]
            if "pulumi.CustomResource" not in bases:
                continue
            token = None
            for node in ast.walk(cls):
                if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "__init__"
                        and node.args and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str) and node.args[0].value.startswith("aws:")):
                    token = node.args[0].value
            args = classes.get(f"{cls.name}Args")
            if token and args is not None:
                resources[token] = {"module": token_module, "inputs": properties(args)}

# The provider resource (`pulumi:providers:aws`).
tree = ast.parse((root / "provider.py").read_text())
for node in tree.body:
    if isinstance(node, ast.ClassDef) and node.name == "ProviderArgs":
        resources["pulumi:providers:aws"] = {"module": "", "inputs": properties(node)}
for node in ast.parse((root / "_inputs.py").read_text()).body:
    if isinstance(node, ast.ClassDef) and is_input_type(node):
        types[f":{node.name}"] = properties(node)

if len(resources) < 100:
    sys.exit(f"only {len(resources)} resources found in pulumi_aws {version}: the SDK's layout changed")
with open(out, "w") as f:
    json.dump({"version": version, "resources": resources, "types": types}, f, indent=0, sort_keys=True)
PY
fi
echo "$OUT"
