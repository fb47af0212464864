"""Deployment artifacts hold together: vercel.json, the api modules, serverless.yml, the transcoder's
Dockerfile, the GitHub workflows and dependabot. Pure parsing and importing: no network, no docker."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from fastapi import FastAPI

from shared.local.routing import load_rewrites, resolve

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
DOCKERFILE = REPO / "functions" / "transcoder" / "Dockerfile"

# Vercel Hobby: 2 GB of memory and 300 s per function, crons at most once a day.
HOBBY_MAX_MEMORY_MB = 2048
HOBBY_MAX_DURATION_S = 300


def api_module_names() -> list[str]:
    """Every Vercel function module: api/*.py except _private ones."""
    return sorted(p.stem for p in (REPO / "api").glob("*.py") if not p.stem.startswith("_"))


# --- YAML with CloudFormation short-form tags ------------------------------------------------------


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads !Ref, !GetAtt, !Sub, ... as the long-form dicts CloudFormation means."""


def _construct_cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_yaml(path: Path) -> Any:
    """Parse YAML that may contain CloudFormation tags."""
    return yaml.load(path.read_text(), Loader=CloudFormationLoader)  # a SafeLoader subclass


def workflow_triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """A workflow's `on:` block as a dict (YAML 1.1 reads a bare `on` key as True)."""
    raw = workflow.get("on", workflow.get(True))
    if isinstance(raw, str):
        return {raw: None}
    if isinstance(raw, list):
        return dict.fromkeys(raw)
    assert isinstance(raw, dict), f"no `on:` triggers: {raw!r}"
    return raw


def import_callable(dotted: str) -> Callable[..., Any]:
    """Import 'package.module.function' (or Serverless' 'path/to/module.function') and return it."""
    module_name, _, attribute = dotted.replace("/", ".").rpartition(".")
    assert module_name and attribute, f"not a module.function handler: {dotted!r}"
    module = importlib.import_module(module_name)
    target = getattr(module, attribute, None)
    assert callable(target), f"{module_name}.{attribute} is not callable"
    return cast(Callable[..., Any], target)


# --- vercel.json and the api modules ---------------------------------------------------------------


@pytest.fixture(scope="module")
def vercel() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((REPO / "vercel.json").read_text())
    return config


def test_python_version_file_says_312() -> None:
    assert (REPO / ".python-version").read_text().strip() == "3.12"


def test_there_are_api_modules() -> None:
    assert "health" in api_module_names()


@pytest.mark.parametrize("name", api_module_names())
def test_api_module_has_function_entry_within_hobby_limits(vercel: dict[str, Any], name: str) -> None:
    entry = vercel.get("functions", {}).get(f"api/{name}.py")
    assert entry is not None, f"vercel.json has no functions entry for api/{name}.py"
    memory, duration = entry.get("memory"), entry.get("maxDuration")
    assert isinstance(memory, int) and 128 <= memory <= HOBBY_MAX_MEMORY_MB, f"api/{name}.py memory {memory}"
    assert isinstance(duration, int) and 1 <= duration <= HOBBY_MAX_DURATION_S, (
        f"api/{name}.py maxDuration {duration}"
    )


@pytest.mark.parametrize("name", api_module_names())
def test_api_module_is_reachable_through_a_rewrite(vercel: dict[str, Any], name: str) -> None:
    destinations = {rewrite["destination"] for rewrite in vercel.get("rewrites", [])}
    assert f"/api/{name}" in destinations, f"no rewrite routes to /api/{name}"


def test_every_functions_entry_is_an_existing_module(vercel: dict[str, Any]) -> None:
    for path in vercel.get("functions", {}):
        assert (REPO / path).is_file(), f"vercel.json configures {path}, which does not exist"


def test_every_rewrite_destination_exists(vercel: dict[str, Any]) -> None:
    public = REPO / "public"  # the source of outputDirectory (dist/, built by scripts/build-web.mjs)
    for rewrite in vercel.get("rewrites", []):
        destination = rewrite["destination"]
        match = re.fullmatch(r"/api/([A-Za-z0-9_]+)", destination)
        if match:
            assert (REPO / "api" / f"{match[1]}.py").is_file(), (
                f"{rewrite['source']} -> missing {destination}"
            )
        else:  # anything else must be a static file of the web client (e.g. an SPA fallback)
            assert destination.startswith("/") and (public / destination.lstrip("/")).is_file(), (
                f"{rewrite['source']} -> {destination}: neither an api module nor a file under {public.name}/"
            )


def test_every_cron_is_served_by_a_rewrite_and_runs_at_most_daily(vercel: dict[str, Any]) -> None:
    rewrites = load_rewrites(REPO / "vercel.json")
    for cron in vercel.get("crons", []):
        rewrite = resolve(rewrites, cron["path"])
        assert rewrite is not None and rewrite.module, f"cron {cron['path']} matches no api rewrite"
        assert (REPO / "api" / f"{rewrite.module.removeprefix('api.')}.py").is_file()
        fields = cron["schedule"].split()
        assert len(fields) == 5, f"cron schedule {cron['schedule']!r} is not 5 fields"
        # Hobby runs a cron at most once a day: a fixed minute and hour.
        assert fields[0].isdigit() and fields[1].isdigit(), f"{cron['schedule']!r} runs more than daily"


@pytest.mark.parametrize("name", api_module_names())
def test_api_module_exposes_app_and_lambda_handler(name: str) -> None:
    from mangum import Mangum

    module = importlib.import_module(f"api.{name}")
    assert isinstance(getattr(module, "app", None), FastAPI), f"api.{name}.app is not a FastAPI app"
    assert isinstance(getattr(module, "lambda_handler", None), Mangum), f"api.{name}.lambda_handler"
    # Vercel's Python runtime rejects a module-level `handler` that is not a BaseHTTPRequestHandler.
    assert not hasattr(module, "handler"), f"api.{name} defines `handler`; call the adapter lambda_handler"


@pytest.mark.parametrize("name", api_module_names())
def test_api_module_only_assembles(name: str) -> None:
    tree = ast.parse((REPO / "api" / f"{name}.py").read_text())
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    defined = [getattr(node, "name", "<lambda>") for node in ast.walk(tree) if isinstance(node, definitions)]
    assert not defined, f"api/{name}.py defines {defined}: logic belongs in shared/"
    allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)
    for node in tree.body:
        is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        assert is_docstring or isinstance(node, allowed), (
            f"api/{name}.py line {node.lineno}: {type(node).__name__} (only imports and assignments)"
        )
    targets = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert {"app", "lambda_handler"} <= targets
    assert "handler" not in targets


# --- serverless.yml --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serverless() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(REPO / "serverless.yml")
    return config


def _serverless_functions() -> dict[str, dict[str, Any]]:
    config = load_yaml(REPO / "serverless.yml")
    functions: dict[str, dict[str, Any]] = config.get("functions") or {}
    return functions


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _dockerfile_cmd(path: Path) -> list[str]:
    cmds = [rest for keyword, rest in _dockerfile_instructions(path) if keyword == "CMD"]
    assert cmds, f"{path} has no CMD"
    value = cmds[-1]
    parsed: list[str] = json.loads(value) if value.startswith("[") else shlex.split(value)
    return parsed


def _resource_name(reference: Any) -> str:
    """The logical id in {'Fn::GetAtt': [id, 'Arn']} (or the 'id.Arn' string form)."""
    assert isinstance(reference, dict), f"expected a GetAtt of a queue, got {reference!r}"
    value = reference.get("Fn::GetAtt")
    if isinstance(value, str):
        value = value.split(".", 1)
    assert isinstance(value, list) and value[1] == "Arn", f"expected GetAtt <Queue>.Arn, got {reference!r}"
    return str(value[0])


def test_serverless_provider(serverless: dict[str, Any]) -> None:
    provider = serverless["provider"]
    assert provider["name"] == "aws"
    assert provider["runtime"] == "python3.12"
    region = str(provider["region"])
    assert "${env:" in region and "," in region, "region should come from the environment with a default"


def test_serverless_has_the_transcoder_and_the_scheduled_job(serverless: dict[str, Any]) -> None:
    functions = serverless["functions"]
    assert "transcoder" in functions
    assert any(
        "schedule" in event for function in functions.values() for event in function.get("events", [])
    ), "no scheduled function"


def test_outbox_relay_runs_every_minute(serverless: dict[str, Any]) -> None:
    relay = serverless["functions"]["relay"]
    assert relay["handler"] == "functions/scheduled/relay.handler"
    import_callable(relay["handler"])
    [schedule] = [event["schedule"] for event in relay.get("events", []) if "schedule" in event]
    rate = schedule["rate"] if isinstance(schedule, dict) else schedule
    assert rate == "rate(1 minute)"
    assert not isinstance(schedule, dict) or schedule.get("enabled", True) is not False
    assert relay.get("layers"), "the relay needs the dependency layer (psycopg, boto3)"


def test_maintenance_claims_only_what_it_does(serverless: dict[str, Any]) -> None:
    description = serverless["functions"]["maintenance"]["description"].lower()
    # Stale multipart uploads belong to an S3 lifecycle rule on the bucket, not to this function.
    assert "upload" not in description
    assert "relay" in description and "purge" in description


@pytest.mark.parametrize("name", sorted(_serverless_functions()))
def test_serverless_function_entry_point_is_importable(serverless: dict[str, Any], name: str) -> None:
    function = serverless["functions"][name]
    if "image" in function:
        image = function["image"]
        image_name = image["name"] if isinstance(image, dict) else image
        command = image.get("command") if isinstance(image, dict) else None
        if not command:
            spec = serverless["provider"]["ecr"]["images"][image_name]
            dockerfile = REPO / spec.get("path", ".") / spec.get("file", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
            command = _dockerfile_cmd(dockerfile)
        assert len(command) == 1, f"{name}: image command should be one handler, got {command}"
        import_callable(command[0])
    else:
        assert "handler" in function, f"{name} has neither handler nor image"
        import_callable(function["handler"])


def test_transcoder_image_and_limits(serverless: dict[str, Any]) -> None:
    transcoder = serverless["functions"]["transcoder"]
    image = serverless["provider"]["ecr"]["images"][transcoder["image"]["name"]]
    # Built from the repository root so the Dockerfile can COPY shared/.
    assert (REPO / image["path"]).resolve() == REPO
    assert (REPO / image["file"]).resolve() == DOCKERFILE
    assert transcoder["timeout"] <= 900
    assert transcoder["memorySize"] >= 2048
    assert transcoder["ephemeralStorageSize"] == 10240


def test_sqs_triggers_follow_aws_rules(serverless: dict[str, Any]) -> None:
    resources = serverless["resources"]["Resources"]
    seen = 0
    for name, function in serverless["functions"].items():
        timeout = function.get("timeout", serverless["provider"].get("timeout", 6))
        for event in function.get("events", []):
            if "sqs" not in event:
                continue
            seen += 1
            sqs = event["sqs"]
            assert sqs.get("functionResponseType") == "ReportBatchItemFailures", name
            assert sqs.get("batchSize", 10) >= 1
            queue_id = _resource_name(sqs["arn"])
            queue = resources[queue_id]
            assert queue["Type"] == "AWS::SQS::Queue"
            visibility = queue["Properties"]["VisibilityTimeout"]
            assert visibility >= 6 * timeout, f"{queue_id}: VisibilityTimeout {visibility} < 6 x {timeout}"
            redrive = queue["Properties"].get("RedrivePolicy")
            assert redrive, f"{queue_id} has no RedrivePolicy"
            dlq = resources[_resource_name(redrive["deadLetterTargetArn"])]
            assert dlq["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" not in dlq["Properties"]
            assert 1 <= int(redrive["maxReceiveCount"]) <= 10
            assert int(dlq["Properties"]["MessageRetentionPeriod"]) == 14 * 24 * 3600
    assert seen >= 2, "the transcoder should listen on the jobs queue and the high-priority queue"
    transcoder_events = serverless["functions"]["transcoder"]["events"]
    assert all(event["sqs"]["batchSize"] == 1 for event in transcoder_events if "sqs" in event)


def test_functions_environment_configures_production_backends(serverless: dict[str, Any]) -> None:
    from shared.settings import Settings

    required = {
        "DATABASE_URL",
        "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN",
        "SIGNING_SECRET",
        "STORAGE_BACKEND",
        "S3_BUCKET",
        "QUEUE_BACKEND",
        "SQS_QUEUE_URL",
        "SQS_HIGH_PRIORITY_QUEUE_URL",
        "SQS_DLQ_URL",
        "APP_ENV",
    }
    provider_env = serverless["provider"].get("environment", {})
    for name, function in serverless["functions"].items():
        env = {**provider_env, **function.get("environment", {})}
        assert required <= set(env), f"{name} lacks {sorted(required - set(env))}"
        assert env["APP_ENV"] == "production"
        assert env["STORAGE_BACKEND"] == "s3"
        assert env["QUEUE_BACKEND"] == "sqs"
        for secret in ("DATABASE_URL", "UPSTASH_REDIS_REST_TOKEN", "SIGNING_SECRET"):
            assert re.search(r"\$\{(env|ssm):", str(env[secret])), f"{secret} must come from env or SSM"
        # Every variable is one the settings read: a typo would silently fall back to a default.
        unknown = {key for key in env if key.lower() not in Settings.model_fields}
        assert not unknown, f"{name}: not settings fields: {sorted(unknown)}"


def test_iam_statements_are_scoped(serverless: dict[str, Any]) -> None:
    statements = serverless["provider"]["iam"]["role"]["statements"]
    services = set()
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
            services.add(action.split(":")[0])
        for resource in resources:
            assert resource != "*", f"statement {actions} applies to every resource"
    assert services == {"sqs", "s3"}


def test_zip_functions_package_shared_and_skip_local_clutter(serverless: dict[str, Any]) -> None:
    for name, function in serverless["functions"].items():
        if "image" in function:
            continue
        patterns = function.get("package", {}).get("patterns") or serverless["package"]["patterns"]
        assert "shared/**" in patterns, f"{name} does not package shared/"
        for excluded in ("tests", ".venv", ".data", "node_modules", "public"):
            assert f"!{excluded}/**" in patterns, f"{name} packages {excluded}/"


def test_dlq_depth_alarm(serverless: dict[str, Any]) -> None:
    resources = serverless["resources"]["Resources"]
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert any(
        alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["Threshold"] == 0
        and alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
        for alarm in alarms
    )


# --- the transcoder's Dockerfile -------------------------------------------------------------------


def test_dockerfile_builds_a_lambda_image_with_our_code_and_ffmpeg() -> None:
    instructions = _dockerfile_instructions(DOCKERFILE)
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert froms and froms[-1].startswith("public.ecr.aws/lambda/python:3.12")
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert any(re.match(r"shared/?\s+\$\{?LAMBDA_TASK_ROOT\}?", rest) for rest in copies), copies
    assert any(re.match(r"functions/?\s+\$\{?LAMBDA_TASK_ROOT\}?", rest) for rest in copies), copies
    envs = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "FFMPEG_BINARY=" in envs
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "requirements.txt" in runs and "imageio_ffmpeg.get_ffmpeg_exe()" in runs
    # av and imageio-ffmpeg at the versions `make dev` uses: the image greps them out of
    # requirements-local.txt into a requirements file; replay that grep and check pip could read it.
    from packaging.requirements import Requirement

    grep = re.search(r"grep -E '([^']+)' /tmp/build/requirements-local\.txt > (\S+);", runs)
    assert grep, "the Dockerfile must select the media pins from requirements-local.txt"
    assert f"-r {grep[2]}" in runs, "the selected pins must be installed as a requirements file (markers)"
    local = (REPO / "requirements-local.txt").read_text().splitlines()
    selected = [line for line in local if re.search(grep[1], line)]
    names = {Requirement(line).name for line in selected}  # raises on a line pip would refuse
    assert names == {"av", "imageio-ffmpeg"}, selected
    import_callable(_dockerfile_cmd(DOCKERFILE)[0])


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".data", ".git", "node_modules", "tests", "bench", "public"} <= ignored
    needed = {"shared", "functions", "requirements.txt", "requirements-local.txt"}
    assert not needed & ignored


# --- GitHub workflows and dependabot ---------------------------------------------------------------


def _workflow(name: str) -> dict[Any, Any]:
    path = WORKFLOWS / name
    assert path.is_file(), f"{path} missing"
    loaded: dict[Any, Any] = yaml.safe_load(path.read_text())
    assert loaded.get("jobs"), f"{name} has no jobs"
    return loaded


def _runs(workflow: dict[Any, Any]) -> str:
    return "\n".join(
        str(step.get("run", "")) for job in workflow["jobs"].values() for step in job.get("steps", [])
    )


def _uses(workflow: dict[Any, Any]) -> list[str]:
    found = []
    for job in workflow["jobs"].values():
        if "uses" in job:
            found.append(job["uses"])
        found.extend(step["uses"] for step in job.get("steps", []) if "uses" in step)
    return found


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_workflow_is_valid_and_pins_actions(path: Path) -> None:
    workflow = _workflow(path.name)
    workflow_triggers(workflow)
    for job_name, job in workflow["jobs"].items():
        assert "runs-on" in job or "uses" in job, f"{path.name}:{job_name}"
    for uses in _uses(workflow):
        if uses.startswith("./"):
            assert (REPO / uses).is_file(), f"{path.name} calls missing {uses}"
        else:
            assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", uses), f"{path.name}: unpinned action {uses}"


def test_tests_workflow() -> None:
    workflow = _workflow("tests.yml")
    triggers = workflow_triggers(workflow)
    assert "push" in triggers and "pull_request" in triggers
    assert not (triggers["push"] or {}).get("branches"), "tests must run on every branch"
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert {"3.11", "3.13"} <= {str(v) for v in job["strategy"]["matrix"]["python"]}
    runs = _runs(workflow)
    assert "bash .ci/run" in runs
    assert re.search(r"apt-get install\b.*\bchromium\b", runs)


def test_preview_workflow() -> None:
    workflow = _workflow("preview.yml")
    assert "pull_request" in workflow_triggers(workflow)
    text = (WORKFLOWS / "preview.yml").read_text()
    assert re.search(r"vercel@\d+\.\d+\.\d+", text), "pin the vercel CLI"
    runs = _runs(workflow)
    assert "--environment=preview" in runs and " build" in runs and "deploy --prebuilt" in runs
    for secret in ("VERCEL_TOKEN", "VERCEL_ORG_ID", "VERCEL_PROJECT_ID"):
        assert f"secrets.{secret}" in text


def test_deploy_workflow_deploys_main_after_tests() -> None:
    workflow = _workflow("deploy.yml")
    triggers = workflow_triggers(workflow)
    text = (WORKFLOWS / "deploy.yml").read_text()
    if "push" in triggers:
        assert triggers["push"]["branches"] == ["main"]
        assert "pull_request" not in triggers
        jobs = workflow["jobs"]
        tests = {
            name
            for name, job in jobs.items()
            if job.get("uses") == "./.github/workflows/tests.yml"
            or "bash .ci/run" in _runs({"jobs": {name: job}})
        }
        assert tests, "deploy.yml runs no tests"
        deploying = [name for name in jobs if name not in tests]
        for name in deploying:
            needs = jobs[name].get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            assert tests & set(needs), f"job {name} deploys without waiting for the tests"
    else:
        run = triggers["workflow_run"]
        assert run["workflows"] == ["tests"] and run.get("branches") == ["main"]
        assert "conclusion == 'success'" in text
    runs = _runs(workflow)
    assert re.search(r"vercel@\d+\.\d+\.\d+", text), "pin the vercel CLI"
    assert "--prod" in runs and "deploy --prebuilt" in runs
    assert re.search(r"serverless@\d+\.\d+\.\d+", text), "pin the serverless CLI"
    assert "deploy --stage prod" in runs
    assert any(uses.startswith("aws-actions/configure-aws-credentials@") for uses in _uses(workflow))
    assert "role-to-assume" in text and "id-token: write" in text, "AWS credentials via OIDC"


def test_codeql_workflow() -> None:
    workflow = _workflow("codeql.yml")
    (job,) = workflow["jobs"].values()
    assert set(job["strategy"]["matrix"]["language"]) == {"python", "javascript-typescript"}
    assert any(uses.startswith("github/codeql-action/analyze@") for uses in _uses(workflow))


def test_dependabot_covers_every_ecosystem() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {(u["package-ecosystem"], u["directory"]): u for u in config["updates"]}
    expected = {("pip", "/"), ("npm", "/"), ("github-actions", "/"), ("docker", "/functions/transcoder")}
    assert expected <= set(updates)
    assert all(update["schedule"]["interval"] == "weekly" for update in updates.values())
    assert (REPO / "functions" / "transcoder" / "Dockerfile").is_file()
