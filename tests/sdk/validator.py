"""Validates Conversation API request bodies with Sinch's own Python SDK, strictly.

Run as a separate process, never imported by the test suite: the SDK's import
name `sinch` is also our own package's. tests/sdk/contract.py starts it as

    python -I -S tests/sdk/validator.py <the SDK's install directory>

(-I -S: no site-packages, no current directory, no PYTHONPATH; only the
standard library and that directory are importable). It prints one JSON line
{"ready": ..., "sdk": version, "models": n}, then answers each request line
{"model": "request" | "message", "body": {...}} with one line
{"ok": bool, "errors": ["where: what", ...]}.

The SDK's models are lenient on purpose (a client must not break when Sinch
adds a field): they allow unknown keys and their enums are open
(`Union[Literal[...], str]`). A wrong field name or a wrong enum value would
pass them. So, before anything is validated, every model reachable from the
send-message request is hardened: unknown keys are forbidden, only wire names
(aliases) are accepted, open enums are closed to their listed values, and maps
whose SDK description says "the key in the map must point to a valid
conversation channel" get the channel enum as their key type. Two rules the
SDK states in its descriptions but does not enforce are added: a message holds
exactly one message kind; a template message has `channel_template` or
`omni_template`; a WhatsApp channel template has a `language_code`, in the
underscore form (`en_US`).
"""

import json
import sys
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

SDK_DIR = sys.argv[1]
sys.path.insert(0, SDK_DIR)

import pydantic  # noqa: E402
from pydantic import BaseModel, model_validator  # noqa: E402
from sinch.domains.conversation.models.v1.messages.internal.request import (  # noqa: E402
    SendMessageRequest,
    SendMessageRequestBody,
)
from sinch.domains.conversation.models.v1.messages.shared.app_message_common_props import (  # noqa: E402,E501
    AppMessageCommonProps,
)
from sinch.domains.conversation.models.v1.messages.types.conversation_channel_type import (  # noqa: E402,E501
    ConversationChannelType,
)

import sinch  # noqa: E402  (the SDK, not the product: see the module docstring)

CHANNEL_KEYED = "key in the map must point to a valid conversation channel"


def _is_str(tp: Any) -> bool:
    return tp is str or (get_origin(tp) is Annotated and get_args(tp)[0] is str)


def closed(tp: Any) -> Any:
    """`tp` with every open enum (a Literal or any string) closed."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return Annotated[(closed(args[0]), *args[1:])]
    if not args or origin is Literal:
        return tp
    if origin is Union:
        if any(get_origin(a) is Literal for a in args):
            args = tuple(a for a in args if not _is_str(a))
        return Union[tuple(closed(a) for a in args)]  # noqa: UP007
    new = tuple(closed(a) for a in args)
    if origin is list:
        return list[new[0]]
    if origin is dict:
        return dict[new[0], new[1]]
    return origin[new]


CHANNEL = closed(ConversationChannelType)


def reachable(*roots: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model a root's fields can hold, at any depth."""

    def models_in(tp: Any):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            yield tp
        for arg in get_args(tp):
            yield from models_in(arg)

    found: list[type[BaseModel]] = []
    todo = list(roots)
    while todo:
        model = todo.pop()
        if model not in found:
            found.append(model)
            for info in model.__pydantic_fields__.values():
                todo.extend(models_in(info.annotation))
    return found


def harden(models: list[type[BaseModel]]) -> None:
    for model in models:
        model.model_config.update(
            extra="forbid",
            populate_by_name=False,
            validate_by_name=False,
            validate_by_alias=True,
        )
        for info in model.__pydantic_fields__.values():
            annotation = closed(info.annotation)
            if CHANNEL_KEYED in (info.description or ""):
                annotation = _channel_keys(annotation)
            info.annotation = annotation
        # Drop the cached schema first, so that rebuilding any model rebuilds
        # the models it holds with their new rules too.
        if "__pydantic_core_schema__" in model.__dict__:
            delattr(model, "__pydantic_core_schema__")
    for model in models:
        model.model_rebuild(force=True)


def _channel_keys(tp: Any) -> Any:
    """Optional[Dict[str, X]] -> Optional[Dict[channel, X]]."""
    if get_origin(tp) is Union:
        return Union[tuple(_channel_keys(a) for a in get_args(tp))]  # noqa: UP007
    if get_origin(tp) in (dict, typing.Dict):  # noqa: UP006
        return dict[CHANNEL, get_args(tp)[1]]
    return tp


MESSAGE_KINDS = tuple(SendMessageRequestBody.model_fields)
harden(reachable(SendMessageRequest, AppMessageCommonProps))


class AppMessage(SendMessageRequestBody, AppMessageCommonProps):
    """A `message`: one kind, plus the overrides every app message may carry."""

    @model_validator(mode="after")
    def _stated_rules(self) -> "AppMessage":
        kinds = [k for k in MESSAGE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a message holds exactly one of {', '.join(MESSAGE_KINDS)}; "
                f"this one holds {kinds or 'none'}"
            )
        template = self.template_message
        if template and not (template.channel_template or template.omni_template):
            raise ValueError(
                "a template message needs channel_template or omni_template"
            )
        whatsapp = ((template and template.channel_template) or {}).get("WHATSAPP")
        language = whatsapp and whatsapp.language_code
        if whatsapp and not language:
            raise ValueError("a WhatsApp channel template needs its language_code")
        if language and "-" in language:
            raise ValueError(
                f"a WhatsApp channel template's language_code is in the underscore "
                f"form (en_US), not {language!r}"
            )
        return self


class Request(SendMessageRequest):
    message: AppMessage


MODELS = {"request": Request, "message": AppMessage}


def differences(sent: Any, dumped: Any, where: str = "") -> list[str]:
    """Where a value sent differs from what the SDK would send for it."""
    if isinstance(sent, dict) and isinstance(dumped, dict):
        return [
            problem
            for key, value in sent.items()
            for problem in differences(value, dumped.get(key), f"{where}.{key}")
        ]
    if isinstance(sent, list) and isinstance(dumped, list) and len(sent) == len(dumped):
        return [
            problem
            for n, (a, b) in enumerate(zip(sent, dumped, strict=True))
            for problem in differences(a, b, f"{where}.{n}")
        ]
    if sent != dumped:
        return [f"{where[1:]}: sent {sent!r}, the SDK would send {dumped!r}"]
    return []


def verdict(model: type[BaseModel], body: Any) -> list[str]:
    try:
        parsed = model.model_validate(body)
    except pydantic.ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "(the body)"
            line = f"{where}: {error['msg']}"
            if line not in errors:
                errors.append(line)
        return errors
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    return differences(body, dumped)


def answer(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def main() -> None:
    assert sinch.__file__.startswith(SDK_DIR), sinch.__file__
    version = getattr(sinch, "__version__", "")
    models = len(reachable(Request))
    answer({"ready": True, "sdk": version, "models": models})
    for line in sys.stdin:
        question = json.loads(line)
        errors = verdict(MODELS[question["model"]], question["body"])
        answer({"ok": not errors, "errors": errors})


if __name__ == "__main__":
    main()
