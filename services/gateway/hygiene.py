"""Text no database of ours stores (NUL, unpaired surrogates) is refused at the door, as a 422
naming the field, wherever it comes in: path and query parameters, JSON and form bodies.

One dependency of the whole app, so no route can forget it. FastAPI has already read and
parsed the body by the time it runs (the request keeps it), so the check costs a walk over the
values, not a second parse.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from servicekit.text_hygiene import refuse_unstorable

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def refuse_unstorable_input(request: Request) -> None:
    for name, value in request.path_params.items():
        if isinstance(value, str):
            refuse_unstorable(name, value)
    for name, value in request.query_params.multi_items():
        refuse_unstorable(name, value)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        form = await request.form()
        for name, value in form.multi_items():
            if isinstance(value, str):
                refuse_unstorable(name, value)
    elif "json" in content_type and await request.body():
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            # Not JSON: the route refuses it itself, or takes no body and ignores it.
            return
        _refuse_in_json(body, "")


def _refuse_in_json(value: Any, path: str) -> None:
    if isinstance(value, str):
        refuse_unstorable(path or "body", value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_in_json(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_in_json(item, f"{path}.{index}" if path else str(index))
