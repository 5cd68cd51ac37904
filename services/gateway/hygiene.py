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
        except (ValueError, RecursionError):
            # Not JSON (or nested past the parser's depth): the route refuses it itself, or
            # takes no body and ignores it.
            return
        _refuse_in_json(body)


def _refuse_in_json(body: Any) -> None:
    """Every string in the body, named by its path (`customer.name`, `items.0.note`). A loop,
    not recursion: however deep the body, the stack stays flat."""
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            refuse_unstorable(path or "body", value)
        elif isinstance(value, dict):
            pending.extend((f"{path}.{key}" if path else str(key), v) for key, v in value.items())
        elif isinstance(value, list):
            pending.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
