"""Everything the adapters do through a provider SDK: importing it, fitting our parameters to its call,
opening the stream, reading it, closing it, and turning the SDK's errors into
:class:`helix.errors.LLMProviderError`. Shared by the OpenAI and Anthropic adapters, whose SDKs have the same
shape (``APIStatusError``, ``APIConnectionError``, ``APIError``; ``create(stream=True)`` returning a stream
with ``close()``).
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any, Protocol, Self, TypeVar

import httpx
import trio

from helix.errors import LLMProviderError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# What the SDKs retry themselves (their `_should_retry`): timeouts, lock conflicts, rate limits, 5xx
# (Anthropic's overload is 529). The adapters report the same set as retryable.
_RETRYABLE_STATUSES = frozenset({408, 409, 429})

# Anthropic reports some failures inside a 200 stream as an `error` event; its type names the status.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

_NEXT_STEP = {
    401: "check the API key",
    403: "check the API key's permissions",
    404: "check the model name and base_url",
}


class _SDKStream(Protocol[T_co]):
    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def close(self) -> None: ...


def import_sdk(module: str, *, adapter: str) -> ModuleType:
    """Import a provider SDK, or raise ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{adapter} needs the {module!r} package: pip install 'helix-agents[{module}]'"
        ) from exc


def fit_params(create: Callable[..., Any], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as keyword arguments of the SDK's ``create``.

    A field the SDK has no parameter for (a server-specific one such as ``top_k``, or one a newer SDK
    dropped) moves into ``extra_body``, which the SDK merges into the JSON it sends; passed as a keyword,
    it would raise TypeError."""
    try:
        accepted = inspect.signature(create).parameters
    except (TypeError, ValueError):  # not introspectable (a mock): pass everything as is
        return body
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return body
    kwargs = {name: value for name, value in body.items() if name in accepted}
    extra = {name: value for name, value in body.items() if name not in accepted}
    if extra:
        kwargs["extra_body"] = {**extra, **(kwargs.get("extra_body") or {})}
    return kwargs


def _transport_errors() -> tuple[type[BaseException], ...]:
    # A dropped connection surfaces as the HTTP library's transport error. The Anthropic SDK lets it out
    # of a stream unwrapped; recent SDKs use httpx2, older ones httpx.
    errors: list[type[BaseException]] = [httpx.TransportError]
    try:
        httpx2 = importlib.import_module("httpx2")
    except ImportError:
        pass
    else:
        errors.append(httpx2.TransportError)
    return tuple(errors)


def is_retryable_status(status: int) -> bool:
    return status in _RETRYABLE_STATUSES or status >= 500


def _detail(body: object, fallback: str) -> str:
    """The provider's own error message, from either SDK's error body."""
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return fallback


def _stream_error_type(body: object) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return str(inner["type"])
    return None


def provider_error(exc: Exception, *, sdk: ModuleType, provider: str, max_retries: int) -> LLMProviderError:
    """Translate an SDK exception raised while opening or reading a stream."""
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        detail = _detail(exc.body, str(exc))
        if status < 400:
            # An error event inside a stream that had answered 200 (Anthropic's overload, mid-stream).
            error_type = _stream_error_type(exc.body)
            mapped = _STREAM_ERROR_STATUS.get(error_type or "")
            retryable = mapped is None or is_retryable_status(mapped)
            return LLMProviderError(
                f"{provider} reported {error_type or 'an error'} in the middle of the stream: {detail}",
                provider=provider,
                status=mapped,
                retryable=retryable,
            )
        retryable = is_retryable_status(status)
        if retryable:
            next_step = f"still failing after {max_retries} retries; retry the run later"
        else:
            next_step = _NEXT_STEP.get(status, "the request was refused; check the model and parameters")
        return LLMProviderError(
            f"{provider} answered HTTP {status}: {detail} ({next_step})",
            provider=provider,
            status=status,
            retryable=retryable,
        )
    if isinstance(exc, sdk.APIConnectionError):
        return LLMProviderError(
            f"could not reach {provider} after {max_retries} retries: {exc}",
            provider=provider,
            status=None,
            retryable=True,
        )
    if isinstance(exc, sdk.APIError):
        # OpenAI: an `error` object inside the stream.
        return LLMProviderError(
            f"{provider} reported an error in the middle of the stream: {_detail(exc.body, str(exc))}",
            provider=provider,
            status=None,
            retryable=True,
        )
    if isinstance(exc, json.JSONDecodeError):
        return LLMProviderError(
            f"{provider} sent a stream event that is not JSON ({exc}); "
            "retry the run from its last checkpoint",
            provider=provider,
            status=None,
            retryable=True,
        )
    return stream_cut_error(provider, exc)


def stream_cut_error(provider: str, cause: BaseException | None = None) -> LLMProviderError:
    """The stream ended before the provider's end-of-stream marker: the step failed but can be retried."""
    reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return LLMProviderError(
        f"the {provider} stream was cut before it finished{reason}; retry the run from its last checkpoint",
        provider=provider,
        status=None,
        retryable=True,
    )


async def open_stream(
    create: Awaitable[_SDKStream[T]], *, sdk: ModuleType, provider: str, max_retries: int
) -> _SDKStream[T]:
    """Await the SDK's ``create(stream=True, ...)``: it sends the request, retries what its policy retries,
    and returns once the response headers say 200."""
    try:
        return await create
    except sdk.APIError as exc:
        raise provider_error(exc, sdk=sdk, provider=provider, max_retries=max_retries) from exc


async def read_stream(
    stream: _SDKStream[T], *, sdk: ModuleType, provider: str, max_retries: int
) -> AsyncGenerator[T, None]:
    """Yield the stream's items; always close the HTTP response, also when the consumer stops early.

    A consumer that stops (trio cancellation, ``aclose``) closes this generator, and the ``finally``
    closes the response at once, so the provider sees the connection go away promptly.
    """
    dropped = (sdk.APIConnectionError, *_transport_errors())
    items = stream.__aiter__()
    try:
        async for item in items:
            yield item
    except dropped as exc:
        raise stream_cut_error(provider, exc) from exc
    except (sdk.APIError, json.JSONDecodeError) as exc:
        raise provider_error(exc, sdk=sdk, provider=provider, max_retries=max_retries) from exc
    finally:
        # Shielded: the consumer's scope is usually cancelled by now, and an unclosed response would keep
        # the connection (and the provider's generation) alive until garbage collection.
        with trio.CancelScope(shield=True):
            await stream.close()
            # The SDK's iterator is an async generator: finish it here rather than leave it to the garbage
            # collector (trio warns about those).
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()


class SDKClientAdapter:
    """What both SDK adapters share: the SDK, the client they own or were given, and closing it.

    ``client=`` and ``api_key=``/``base_url=`` are exclusive; ``max_retries`` applies either way (the SDK
    retries rate limits, overload and 5xx with backoff). An adapter that built its own client closes it in
    :meth:`aclose` (or ``async with``); a client passed in stays open.
    """

    def __init__(
        self,
        *,
        sdk_module: str,
        client_class: str,
        adapter: str,
        model: str,
        api_key: str | None,
        base_url: str | None,
        client: Any,
        max_retries: int,
        params: dict[str, Any],
    ) -> None:
        self._sdk: ModuleType = import_sdk(sdk_module, adapter=adapter)
        if client is not None and (api_key is not None or base_url is not None):
            raise TypeError(f"{adapter}: pass either client= or api_key=/base_url=, not both")
        self._owns_client = client is None
        if client is None:
            client = getattr(self._sdk, client_class)(
                api_key=api_key, base_url=base_url, max_retries=max_retries
            )
        else:
            client = client.with_options(max_retries=max_retries)
        self._client: Any = client
        self.model = model
        self.max_retries = max_retries
        self.params = dict(params)

    async def aclose(self) -> None:
        """Close the HTTP client if this adapter created it; a client passed in stays open."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
